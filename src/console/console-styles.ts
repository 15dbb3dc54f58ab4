/** The console's stylesheet: plain CSS served by the same server (no CDN: the deployment may be offline). */
export const consoleCss = `
:root{--ink:#1d2330;--muted:#5b6475;--line:#dde1e7;--bg:#f4f6f9;--brand:#123a6b;--brand2:#1f5fa8;--ok:#0b7a4b;--warn:#a66300;--bad:#b3261e}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:15px/1.55 "PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",system-ui,sans-serif;color:var(--ink);background:var(--bg)}
header{display:flex;justify-content:space-between;align-items:center;background:var(--brand);color:#fff;padding:14px 28px}
header h1{margin:0;font-size:19px;font-weight:600}header small{color:#c9d6ea}
.who{display:flex;gap:14px;align-items:center;font-size:14px}
.layout{display:grid;grid-template-columns:200px minmax(0,1fr);align-items:start}.layout.bare{grid-template-columns:minmax(0,1fr)}.layout.bare nav{display:none}
nav{display:flex;flex-direction:column;padding:10px 0 24px;background:#fff;border-right:1px solid var(--line);min-height:calc(100vh - 72px);position:sticky;top:0}
nav a{padding:8px 18px;color:var(--muted);text-decoration:none;border-left:3px solid transparent}
nav a.active,nav a:hover{color:var(--brand);border-left-color:var(--brand2);background:#f1f5fb}
nav .waiting{margin-left:8px;padding:0 7px;border-radius:9px;background:var(--warn);color:#fff;font-size:12px;line-height:18px;display:inline-block}
nav .waiting[hidden]{display:none}
nav .waiting.late{background:var(--bad)}
nav .nav-group{margin:14px 18px 4px;font-size:12px;font-weight:600;color:#8a93a3;letter-spacing:.04em}
main{max-width:1180px;width:100%;margin:22px auto;padding:0 22px}
h2{font-size:18px;margin:0 0 14px}h3{font-size:16px;margin:6px 0}
.panel,.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:16px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.panel{overflow-x:auto}#supervision-table th{white-space:normal;min-width:4em}
.narrow{max-width:620px;margin:40px auto}
.columns{display:grid;grid-template-columns:minmax(280px,1fr) 2fr;gap:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:16px}
table{width:100%;border-collapse:collapse;font-size:14px;margin:8px 0}
th,td{text-align:left;padding:7px 9px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;background:#fafbfc;white-space:nowrap}
tr.chosen td{background:#f1f5fb}tr.chosen td:first-child{box-shadow:inset 3px 0 var(--brand2)}
select{font:inherit;padding:8px 10px;border:1px solid #c8ced8;border-radius:7px;background:#fff;min-width:240px}
textarea,input{width:100%;font:14px ui-monospace,SFMono-Regular,Menlo,monospace;padding:9px 10px;border:1px solid #c8ced8;border-radius:7px;background:#fff}
input{font-family:inherit}label{display:block;margin:12px 0 5px;color:var(--muted);font-size:13px}
.check{display:inline-flex;gap:4px;margin:0 14px 6px 0;color:var(--ink)}.check input{width:auto}
.actions{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:14px 0}
.actions .reason{max-width:360px}
.actions.period input{width:auto}
button{white-space:nowrap;font:inherit;padding:8px 16px;border-radius:7px;border:1px solid var(--brand2);background:var(--brand2);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--brand2)}button.link{background:none;border:none;color:#fff;text-decoration:underline;padding:0}
button:hover{filter:brightness(1.08)}button.link-dark{background:none;border:none;color:var(--brand2);text-decoration:underline;padding:0}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12.5px;font-weight:600;background:#e8eef8;color:var(--brand2);white-space:nowrap}
.badge.ok{background:#e3f4ec;color:var(--ok)}.badge.warn{background:#fff2dc;color:var(--warn)}.badge.bad{background:#fde8e6;color:var(--bad)}
.muted{color:var(--muted)}.error{color:var(--bad)}
ul.plain{list-style:none;margin:0;padding:0;overflow-wrap:anywhere}
.verdict{min-height:48px;border-left:4px solid var(--line);padding:4px 14px;margin-top:10px}.verdict:empty{border-left-color:transparent}
.suppressed{color:var(--warn);cursor:help}
.null{color:var(--muted);font-size:.85em;cursor:help}
.total{font-weight:600;cursor:help}
.synthetic-note{background:#fff8ec;border:1px solid #f1d9ad;border-radius:7px;padding:8px 12px}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:7px;padding:10px;overflow:auto;font-size:13px}
code{font-family:ui-monospace,Menlo,monospace;font-size:13px}.wrap{word-break:break-all;display:block}
.bar{height:10px;background:#edf0f4;border-radius:6px;min-width:64px;overflow:hidden}
#supervision-table td:first-child{min-width:8em}.fill{height:100%;background:var(--brand2)}
.answer{min-height:44px;margin-top:6px}.answer .badge{font-size:15px;padding:4px 14px}
@media (max-width:800px){.columns,.layout{grid-template-columns:minmax(0,1fr)}nav{min-height:0;position:static;flex-direction:row;flex-wrap:wrap;border-right:none;border-bottom:1px solid var(--line)}}
`;
