// Sends messages with the official mailgun.js client, for test_mailgun_js.py.
//
// Reads one JSON job on stdin:
//   {"url": "http://127.0.0.1:PORT", "key": "API key", "domain": "shop.example",
//    "messages": [DATA, ...]}
// where each DATA is what mg.messages.create(domain, DATA) takes, except that an attachment
// or inline file (one, or a list) is given as {"filename": NAME, "data": BASE64} and is passed
// on as {filename, data: Buffer}. A DATA may also carry "_domain" or "_key" to send that one
// message to another domain or with another key.
//
// Prints one JSON line per message, in order: {"ok": true, "result": <the resolved value>} or
// {"ok": false, "status": N, "message": ..., "details": ..., "type": ...}. Exits 0 when every
// message got an answer (accepted or refused), 1 on a bad job.

import FormData from 'form-data';
import Mailgun from 'mailgun.js';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function decodeFiles(value) {
  const one = (f) => ({ filename: f.filename, data: Buffer.from(f.data, 'base64') });
  return Array.isArray(value) ? value.map(one) : one(value);
}

function clientFor(url, key) {
  const mailgun = new Mailgun(FormData);
  return mailgun.client({ username: 'api', key, url });
}

const job = JSON.parse(await readStdin());
if (!job.url || !job.key || !job.domain || !Array.isArray(job.messages)) {
  console.error('send.mjs: the job needs url, key, domain and a list of messages');
  process.exit(1);
}

for (const message of job.messages) {
  const { _domain: domain = job.domain, _key: key = job.key, ...data } = message;
  for (const field of ['attachment', 'inline']) {
    if (data[field] !== undefined) data[field] = decodeFiles(data[field]);
  }
  let line;
  try {
    const result = await clientFor(job.url, key).messages.create(domain, data);
    line = { ok: true, result };
  } catch (err) {
    line = { ok: false, status: err.status ?? null, message: err.message ?? String(err),
             details: err.details ?? null, type: err.type ?? null };
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}
