// Shared by the scenarios: read the input JSON from stdin, write the
// output JSON to stdout, and turn a thrown error into one line on stderr
// and a non-zero exit, which the Go side reports.
export async function main(fn) {
  let raw = '';
  for await (const chunk of process.stdin) raw += chunk;
  try {
    const out = await fn(JSON.parse(raw || '{}'));
    process.stdout.write(JSON.stringify(out ?? {}));
  } catch (err) {
    const cause = err.cause ? ` (${JSON.stringify(err.cause)})` : '';
    // A challenge (401 with WWW-Authenticate) leaves the body unread; it
    // holds the error description, which tests check.
    const body = err.response && !err.response.bodyUsed ? ` body: ${await err.response.text()}` : '';
    process.stderr.write(`${err.code ?? err.name}: ${err.message}${cause}${body}\n`);
    process.exit(1);
  }
}
