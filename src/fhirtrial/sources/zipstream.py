"""A zip archive's members one at a time, in bounded memory, however many there are.

``zipfile.ZipFile`` reads the whole central directory when it opens an archive: the registry's
bulk download (one JSON file per study, about 550,000 members) would hold half a million
``ZipInfo`` objects (and the raw directory bytes) before the first record is read, so memory
would grow with the registry. :class:`StreamingZip` opens the archive the same way (same
end-of-archive checks, zip64, prepended data) but reads the central directory entry by entry
as the caller iterates, building each ``ZipInfo`` as ``zipfile`` itself does; members are then
opened by ``zipfile`` (decompression, CRC checks, encryption refusal unchanged).

This leans on ``zipfile``'s module-level record layout names (``_EndRecData``, ``_ECD_*``,
``_CD_*``), unchanged from Python 3.8 to 3.13; ``tests/test_ingest.py`` reads the same
archives through it and through ``zipfile.ZipFile`` and compares.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from typing import Any

_zf: Any = zipfile  # the private record layout names are not in the type stubs


class StreamingZip(zipfile.ZipFile):
    """A read-only ZipFile whose members come from :meth:`iter_infos`, read lazily."""

    def __init__(self, file: str, *, chunk: int = 1 << 20) -> None:
        self._chunk = chunk
        super().__init__(file, "r")

    def _RealGetContents(self) -> None:
        """Where the central directory is, and how many entries it has; not the entries."""
        fp = self.fp
        try:
            endrec = _zf._EndRecData(fp)
        except OSError:
            raise zipfile.BadZipFile("File is not a zip file") from None
        if not endrec:
            raise zipfile.BadZipFile("File is not a zip file")
        size_cd, offset_cd = endrec[_zf._ECD_SIZE], endrec[_zf._ECD_OFFSET]
        self._comment = endrec[_zf._ECD_COMMENT]
        concat = endrec[_zf._ECD_LOCATION] - size_cd - offset_cd
        if endrec[_zf._ECD_SIGNATURE] == _zf.stringEndArchive64:
            concat -= _zf.sizeEndCentDir64 + _zf.sizeEndCentDir64Locator
        self.start_dir = offset_cd + concat
        if self.start_dir < 0:
            raise zipfile.BadZipFile("Bad offset for central directory")
        self._cd_size = size_cd
        self._concat = concat
        #: entries the archive declares (files and directories): the progress bar's total
        self.declared_entries = int(endrec[_zf._ECD_ENTRIES_TOTAL])

    def iter_infos(self) -> Iterator[zipfile.ZipInfo]:
        """Every member's ZipInfo in central-directory (archive) order, read as needed."""
        if self.filename is None:  # pragma: no cover - always opened from a path here
            raise ValueError("StreamingZip needs a file path")
        size_cd, concat = self._cd_size, self._concat
        encoding = self.metadata_encoding or "cp437"
        with open(self.filename, "rb", buffering=self._chunk) as fp:
            fp.seek(self.start_dir)
            total = 0
            while total < size_cd:
                raw = fp.read(_zf.sizeCentralDir)
                if len(raw) != _zf.sizeCentralDir:
                    raise zipfile.BadZipFile("Truncated central directory")
                centdir = struct.unpack(_zf.structCentralDir, raw)
                if centdir[_zf._CD_SIGNATURE] != _zf.stringCentralDir:
                    raise zipfile.BadZipFile("Bad magic number for central directory")
                name_len = centdir[_zf._CD_FILENAME_LENGTH]
                extra_len = centdir[_zf._CD_EXTRA_FIELD_LENGTH]
                comment_len = centdir[_zf._CD_COMMENT_LENGTH]
                filename = fp.read(name_len)
                flags = centdir[_zf._CD_FLAG_BITS]
                x = zipfile.ZipInfo(filename.decode("utf-8") if flags & _zf._MASK_UTF_FILENAME
                                    else filename.decode(encoding))
                x.extra = fp.read(extra_len)
                x.comment = fp.read(comment_len)
                x.header_offset = centdir[_zf._CD_LOCAL_HEADER_OFFSET]
                (x.create_version, x.create_system, x.extract_version, x.reserved,
                 x.flag_bits, x.compress_type, t, d,
                 x.CRC, x.compress_size, x.file_size) = centdir[1:12]
                if x.extract_version > _zf.MAX_EXTRACT_VERSION:
                    raise NotImplementedError(f"zip file version {x.extract_version / 10:.1f}")
                x.volume, x.internal_attr, x.external_attr = centdir[15:18]
                x._raw_time = t  # type: ignore[attr-defined]
                x.date_time = ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F,
                               t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)
                x._decodeExtra()  # type: ignore[attr-defined]
                x.header_offset = x.header_offset + concat
                total += _zf.sizeCentralDir + name_len + extra_len + comment_len
                yield x
