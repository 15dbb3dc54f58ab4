/**
 * A self-contained API reference page: it fetches /openapi.json from the same server and lists every route with
 * its parameters and responses. No CDN, because the deployment may have no internet access.
 */
export function docsPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API reference · public data sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#123a6b;color:#fff;padding:16px 32px}header h1{margin:0;font-size:20px}
main{max-width:1000px;margin:24px auto;padding:0 24px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:12px 0;padding:12px 16px}
.m{display:inline-block;min-width:56px;font-weight:700;font-family:monospace}
.get{color:#0a6}.post{color:#06c}.delete{color:#c30}.put,.patch{color:#a60}
code{font-family:ui-monospace,monospace;background:#eef1f5;padding:1px 4px;border-radius:4px}
.d{color:#555;margin:4px 0 0}small{color:#666}
</style></head>
<body><header><h1>Public data sandbox — API reference</h1><small>原始数据不出域，数据可用不可见 · <a style="color:#cde" href="/openapi.json">openapi.json</a></small></header>
<main id="routes"><p>Loading the OpenAPI document…</p></main>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  const main=document.getElementById('routes');main.textContent='';
  const esc=s=>String(s??'').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
  for(const [path,ops] of Object.entries(doc.paths)){for(const [method,op] of Object.entries(ops)){
    const s=document.createElement('section');
    const params=(op.parameters||[]).map(p=>'<code>'+esc(p.name)+'</code> ('+esc(p.in)+')').join(', ');
    const responses=Object.keys(op.responses||{}).join(' · ');
    s.innerHTML='<div><span class="m '+method+'">'+method.toUpperCase()+'</span> <code>'+esc(path)+'</code></div>'+
      '<p class="d">'+esc(op.summary)+'</p>'+(op.description?'<p class="d"><small>'+esc(op.description)+'</small></p>':'')+
      (params?'<p class="d"><small>Parameters: '+params+'</small></p>':'')+'<p class="d"><small>Responses: '+esc(responses)+'</small></p>';
    main.appendChild(s);}}
});
</script></body></html>`;
}
