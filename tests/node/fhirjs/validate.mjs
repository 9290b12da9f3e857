// FHIR.js (npm `fhir`, R4 4.0.x profiles) as an independent validator for fhirtrial.
// Reads NDJSON resources on stdin, writes one JSON line per resource on stdout:
//   {"index": n, "valid": bool, "seconds": s, "messages": [{"severity", "location", "message"}]}
// `seconds` is the pure validation time (no start-up, no I/O) so benchmarks compare like with like.
import { Fhir } from 'fhir';
import { createInterface } from 'node:readline';

const fhir = new Fhir();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
let index = 0;
for await (const line of lines) {
  if (!line.trim()) continue;
  const resource = JSON.parse(line);
  const t0 = process.hrtime.bigint();
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const messages = (result.messages || []).map((m) => ({
    severity: m.severity, location: m.location, message: m.message,
  }));
  process.stdout.write(JSON.stringify({ index, valid: result.valid, seconds, messages }) + '\n');
  index += 1;
}
