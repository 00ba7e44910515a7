/**
 * The web page served at `/`: upload a WAV or record from the microphone (MediaRecorder, then
 * decoded with Web Audio and encoded as 16-bit PCM WAV in the page), send it to the predict
 * route, and show the emotion probabilities as a bar chart with the deployed model that answered.
 * Self-contained (no external scripts), so it works offline and inside the serving container.
 */
import { createHash } from 'node:crypto';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const tokenInput = $('token');
tokenInput.value = localStorage.getItem('lockstep-token') || '';
tokenInput.addEventListener('change', () => localStorage.setItem('lockstep-token', tokenInput.value));

function setStatus(text, isError) {
  const el = $('status');
  el.textContent = text;
  el.className = isError ? 'error' : '';
}

function toBase64(bytes) {
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) s += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  return btoa(s);
}

/** 16-bit PCM mono WAV from Float32 samples. */
function encodeWav(samples, sampleRate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, 'RIFF'); v.setUint32(4, 36 + samples.length * 2, true); str(8, 'WAVE');
  str(12, 'fmt '); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true); v.setUint32(28, sampleRate * 2, true);
  v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, 'data'); v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, Math.round(x * 32767), true);
  }
  return new Uint8Array(buf);
}

async function predictWav(bytes, name) {
  setStatus('Predicting ' + name + '…');
  const headers = { 'content-type': 'application/json' };
  if (tokenInput.value) headers.authorization = 'Bearer ' + tokenInput.value;
  const t0 = performance.now();
  const res = await fetch(PREDICT_ROUTE, { method: 'POST', headers, body: JSON.stringify({ instances: [{ audio: toBase64(bytes) }] }) });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) { setStatus('Error ' + res.status + ': ' + (body.error || res.statusText), true); return; }
  const p = body.predictions[0];
  setStatus(name + ' answered in ' + Math.round(performance.now() - t0) + ' ms');
  $('label').textContent = p.label;
  $('model').textContent = 'deployed model ' + body.deployedModelId + ' · version ' + String(body.modelVersionId).slice(0, 12);
  const chart = $('chart');
  chart.textContent = '';
  const entries = Object.entries(p.scores).sort((a, b) => a[0].localeCompare(b[0]));
  for (const [label, score] of entries) {
    const row = document.createElement('div');
    row.className = 'row' + (label === p.label ? ' top' : '');
    row.dataset.label = label;
    const name = document.createElement('span'); name.className = 'name'; name.textContent = label;
    const track = document.createElement('span'); track.className = 'track';
    const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = (score * 100).toFixed(1) + '%';
    track.appendChild(bar);
    const val = document.createElement('span'); val.className = 'val'; val.textContent = (score * 100).toFixed(1) + '%';
    row.append(name, track, val);
    chart.appendChild(row);
  }
}

$('file').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  if (!f) return;
  try { await predictWav(new Uint8Array(await f.arrayBuffer()), f.name); } catch (err) { setStatus(String(err), true); }
});

let recorder, chunks = [];
$('record').addEventListener('click', async () => {
  const btn = $('record');
  if (recorder && recorder.state === 'recording') { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    recorder = new MediaRecorder(stream);
    chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      btn.textContent = 'Record';
      try {
        const ctx = new AudioContext();
        const audio = await ctx.decodeAudioData(await new Blob(chunks).arrayBuffer());
        const mono = new Float32Array(audio.length);
        for (let c = 0; c < audio.numberOfChannels; c++) {
          const ch = audio.getChannelData(c);
          for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / audio.numberOfChannels;
        }
        await predictWav(encodeWav(mono, audio.sampleRate), 'recording');
      } catch (err) { setStatus('Could not decode the recording: ' + err, true); }
    };
    recorder.start();
    btn.textContent = 'Stop';
    setStatus('Recording… click Stop when done.');
  } catch (err) { setStatus('Microphone unavailable: ' + err, true); }
});
`;

const STYLE = `
body{font:15px/1.4 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}.controls{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;margin:1rem 0}
button{padding:.4rem 1rem}#label{font-size:2rem;font-weight:600;margin:.5rem 0 0}#model{color:#666;font-size:.85rem}
.row{display:grid;grid-template-columns:6rem 1fr 4rem;gap:.5rem;align-items:center;margin:.25rem 0}
.track{background:#eee;height:1.1rem;border-radius:3px;overflow:hidden}.bar{display:block;height:100%;background:#7a9cc6}
.top .bar{background:#2b6cb0}.val{text-align:right;font-variant-numeric:tabular-nums}.error{color:#b00020}
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The page's HTML and the Content-Security-Policy it is served with: nothing but its own inline
 * script and style (allowed by hash), requests to this origin only, no frames, no plugins.
 */
export function renderPageWithPolicy(options: { env: string; predictRoute: string }): {
  html: string;
  csp: string;
} {
  const script = `const PREDICT_ROUTE = ${JSON.stringify(options.predictRoute).replace(/</g, '\\u003c')};${SCRIPT}`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "media-src 'self' blob:",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html: renderPage(options, script), csp };
}

/** The page's HTML. */
export function renderPage(options: { env: string; predictRoute: string }, script?: string): string {
  const env = escapeHtml(options.env);
  const code =
    script ??
    `const PREDICT_ROUTE = ${JSON.stringify(options.predictRoute).replace(/</g, '\\u003c')};${SCRIPT}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>lockstep · ${env}</title>
<style>${STYLE}</style></head>
<body>
<h1>Speech emotion · <span id="env">${env}</span></h1>
<div class="controls">
<label>WAV file <input id="file" type="file" accept="audio/wav,.wav"></label>
<button id="record" type="button">Record</button>
<label>Token <input id="token" type="password" size="10" placeholder="(optional)"></label>
</div>
<div id="status" role="status">Choose a WAV file or record a few seconds of speech.</div>
<div id="label" aria-live="polite"></div><div id="model"></div>
<div id="chart"></div>
<script>${code}</script>
</body></html>
`;
}
