"""``python -m fhirtrial``: the same command as the ``fhirtrial`` console script, for source
checkouts and environments where the script is not on PATH."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="fhirtrial")
