/** The console speaks Chinese by default (its users are Chinese public bodies and companies), English on request. */
export type Language = 'zh' | 'en';

const phrases = {
  title: ['公共数据沙箱 · 控制台', 'Public data sandbox · console'],
  motto: ['原始数据不出域，数据可用不可见', 'Raw data never leaves the domain: usable, not visible'],
  signIn: ['登录', 'Sign in'],
  signInOidc: ['统一身份认证登录', 'Sign in with the identity provider'],
  signOut: ['退出', 'Sign out'],
  tokenLabel: ['访问令牌（开发模式：见 DATA_DIR/dev-tokens.json）', 'Access token (dev mode: see DATA_DIR/dev-tokens.json)'],
  signedInAs: ['当前用户', 'Signed in as'],
  catalogue: ['数据目录', 'Catalogue'],
  analysis: ['分析任务', 'New analysis'],
  jobs: ['任务', 'Jobs'],
  budgets: ['隐私预算', 'Privacy budgets'],
  products: ['产品', 'Products'],
  reviews: ['审核队列', 'Review queue'],
  audit: ['审计日志', 'Audit log'],
  incidents: ['安全事件', 'Incidents'],
  report: ['年度产品报告', 'Annual product report'],
  usage: ['用量与费用', 'Usage and fees'],
  grade: ['分级', 'Grade'],
  institution: ['来源机构', 'Source'],
  columns: ['字段', 'Columns'],
  columnClass: ['字段类别', 'Class'],
  datasets: ['数据集', 'Datasets'],
  purpose: ['用途', 'Purpose'],
  sql: ['SQL 查询', 'SQL query'],
  check: ['策略检查', 'Check against policy'],
  submit: ['提交任务', 'Submit job'],
  accepted: ['可以运行', 'Would be accepted'],
  refused: ['将被拒绝', 'Would be refused'],
  status: ['状态', 'Status'],
  created: ['提交时间', 'Submitted'],
  result: ['结果', 'Result'],
  suppressed: ['已抑制', 'suppressed'],
  receipt: ['发布回执（JWS）', 'Release receipt (JWS)'],
  approve: ['批准发布', 'Approve'],
  withhold: ['不予发布', 'Withhold'],
  reason: ['理由', 'Reason'],
  verify: ['验证', 'Verify'],
  verifyLog: ['验证审计日志', 'Verify the audit log'],
  treeSize: ['树大小', 'Tree size'],
  rootHash: ['根哈希', 'Root hash'],
  verified: ['验证通过', 'Verified'],
  failed: ['验证失败', 'Verification failed'],
  tryIt: ['试用', 'Try it'],
  plain: ['明文核验', 'Plain'],
  encrypted: ['同态加密核验（本地加密）', 'Encrypted (encrypted in this browser)'],
  match: ['一致', 'Match'],
  noMatch: ['不一致', 'No match'],
  price: ['价格', 'Price'],
  free: ['公益用途免费', 'free for public-interest use'],
  perCall: ['分/次（行业用途）', 'fen per call (industry use)'],
  calls: ['调用次数', 'Calls'],
  fees: ['费用（分）', 'Fees (fen)'],
  remaining: ['剩余', 'Remaining'],
  spent: ['已用', 'Spent'],
  nothing: ['暂无', 'Nothing here yet'],
  loading: ['加载中…', 'Loading…'],
  decide: ['处理', 'Decide'],
  publish: ['发布', 'Publish'],
  suspend: ['暂停', 'Suspend'],
  kind: ['类型', 'Kind'],
  operator: ['运营主体', 'Operator'],
  year: ['年度', 'Year'],
  downloadCsv: ['下载 CSV', 'Download CSV'],
  working: ['处理中…', 'Working…'],
  signature: ['签名已用平台公钥验证', 'signature checked with the platform key'],
  terms: ['使用条款', 'Terms of use'],
} as const;

export type Phrase = keyof typeof phrases;
let language: Language = (localStorage.getItem('pds-language') as Language | null) ?? 'zh';

export const currentLanguage = () => language;
export function setLanguage(next: Language): void {
  language = next;
  localStorage.setItem('pds-language', next);
  document.documentElement.lang = next === 'zh' ? 'zh-CN' : 'en';
}
export const t = (phrase: Phrase): string => phrases[phrase][language === 'zh' ? 0 : 1];
