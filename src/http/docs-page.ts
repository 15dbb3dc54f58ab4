/**
 * A self-contained API reference page: it fetches /openapi.json from the same server and renders every route,
 * grouped by tag, with its parameters, request body fields, example and responses. No CDN, because the deployment
 * may have no internet access; the page builds its DOM from the document with textContent, never from HTML strings.
 */
export function docsPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API reference · public data sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#123a6b;color:#fff;padding:16px 32px}header h1{margin:0;font-size:20px}header a{color:#cde}
.layout{display:flex;gap:24px;max-width:1240px;margin:24px auto;padding:0 24px;align-items:flex-start}
nav{position:sticky;top:16px;min-width:190px;font-size:14px}nav a{display:block;color:#123a6b;text-decoration:none;padding:2px 0}
main{flex:1;min-width:0}h2{margin:28px 0 8px;font-size:18px;text-transform:capitalize}
details{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:8px 0;padding:10px 16px}
summary{cursor:pointer;list-style:none}summary::-webkit-details-marker{display:none}
.m{display:inline-block;min-width:56px;font-weight:700;font-family:ui-monospace,monospace}
.get{color:#0a6}.post{color:#06c}.delete{color:#c30}.put,.patch{color:#a60}
code,pre{font-family:ui-monospace,monospace;background:#eef1f5;border-radius:4px}code{padding:1px 4px}
pre{padding:8px 10px;overflow:auto;font-size:13px}.d{color:#555;margin:4px 0}.s{color:#555;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:6px 0}td,th{text-align:left;border-top:1px solid #eef0f3;padding:4px 8px;vertical-align:top}
h4{margin:12px 0 4px;font-size:14px}.req{color:#c30}
</style></head>
<body><header><h1>Public data sandbox — API reference</h1><small>原始数据不出域，数据可用不可见 · <a href="/openapi.json">openapi.json</a> · every /v1 route takes <code>Authorization: Bearer &lt;token&gt;</code>; errors are <code>{"error": {"code", "message", "details"}}</code> with a stable code</small></header>
<div class="layout"><nav id="toc"></nav><main id="routes"><p>Loading the OpenAPI document…</p></main></div>
<script>
const el=(tag,attrs,...children)=>{const e=document.createElement(tag);for(const [k,v] of Object.entries(attrs||{}))e.setAttribute(k,v);for(const c of children)if(c!=null)e.append(c instanceof Node?c:String(c));return e;};
// Descriptions mark code with backticks, as in Markdown.
const prose=(text)=>el('span',{},...String(text).split('\`').map((part,i)=>i%2?el('code',{},part):part));
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  const schemas=(doc.components&&doc.components.schemas)||{};
  const resolve=s=>{for(let i=0;s&&s.$ref&&i<10;i++)s=schemas[s.$ref.split('/').pop()];return s||{};};
  const typeOf=s=>{s=resolve(s);if(s.enum)return s.enum.map(v=>JSON.stringify(v)).join(' | ');if(s.anyOf||s.oneOf)return (s.anyOf||s.oneOf).map(typeOf).join(' | ');
    if(s.type==='array')return typeOf(s.items)+'[]';return [].concat(s.type||'object').join(' | ')+(s.format?' ('+s.format+')':'');};
  const fields=(schema)=>{const s=resolve(schema);const props=s.properties||{};const required=new Set(s.required||[]);
    const rows=Object.entries(props).map(([name,p])=>el('tr',{},el('td',{},el('code',{},name),required.has(name)?el('span',{class:'req'},' *'):null),el('td',{},typeOf(p)),el('td',{},resolve(p).description||'')));
    return rows.length?el('table',{},el('tr',{},el('th',{},'field'),el('th',{},'type'),el('th',{},'meaning')),...rows):null;};
  const main=document.getElementById('routes');const toc=document.getElementById('toc');main.textContent='';
  const byTag=new Map();
  for(const [path,ops] of Object.entries(doc.paths))for(const [method,op] of Object.entries(ops)){const tag=(op.tags&&op.tags[0])||'other';if(!byTag.has(tag))byTag.set(tag,[]);byTag.get(tag).push([path,method,op]);}
  for(const [tag,ops] of byTag){
    toc.append(el('a',{href:'#tag-'+tag},tag+' ('+ops.length+')'));
    main.append(el('h2',{id:'tag-'+tag},tag));
    for(const [path,method,op] of ops){
      const body=op.requestBody&&op.requestBody.content||{};const json=body['application/json'];
      const params=(op.parameters||[]).map(p=>el('tr',{},el('td',{},el('code',{},p.name),p.required?el('span',{class:'req'},' *'):null),el('td',{},p.in),el('td',{},typeOf(p.schema||{})),el('td',{},p.description||(p.schema&&resolve(p.schema).description)||'')));
      const example=json&&(json.example||resolve(json.schema).example);
      main.append(el('details',{},
        el('summary',{},el('span',{class:'m '+method},method.toUpperCase()),' ',el('code',{},path),' ',el('span',{class:'s'},op.summary||'')),
        op.description?el('p',{class:'d'},prose(op.description)):null,
        params.length?el('div',{},el('h4',{},'Parameters'),el('table',{},...params)):null,
        Object.keys(body).length?el('div',{},el('h4',{},'Request body ('+Object.keys(body).join(', ')+')'),json?fields(json.schema):null,example?el('pre',{},JSON.stringify(example,null,2)):null):null,
        el('h4',{},'Responses'),
        el('table',{},...Object.entries(op.responses||{}).map(([status,r])=>el('tr',{},el('td',{},el('code',{},status)),el('td',{},r.description||''))))));
    }
  }
});
</script></body></html>`;
}
