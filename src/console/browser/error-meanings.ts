import type { ErrorCode, PolicyCode } from '../../errors/app-error.js';
import { currentLanguage, type Phrase, tValue } from './i18n.js';

/**
 * What each of the server's error codes means, in Chinese. The server's messages are English (clients and logs
 * match on them); a person using the console in Chinese reads this first, then the server's message for the
 * particulars it names (a field, a limit, when to retry). Typed by ErrorCode, so a new code does not compile
 * until it is written here.
 */
const meaningInChinese: Record<ErrorCode, string> = {
  BAD_REQUEST: '请求无法处理',
  VALIDATION_FAILED: '填写的内容不符合要求',
  UNKNOWN_FIELD: '请求中有未定义的字段',
  BODY_TOO_LARGE: '请求内容过大',
  UNSUPPORTED_MEDIA_TYPE: '不支持该文件或内容格式',
  TOKEN_MISSING: '未登录：请先输入访问令牌',
  TOKEN_MALFORMED: '访问令牌格式不正确',
  TOKEN_ALGORITHM_REFUSED: '访问令牌的签名算法不被接受',
  TOKEN_UNKNOWN_KEY: '访问令牌的签名密钥已失效（可能已轮换），请重新获取令牌',
  TOKEN_SIGNATURE_INVALID: '访问令牌签名无效',
  TOKEN_EXPIRED: '访问令牌已过期，请重新获取',
  TOKEN_NOT_YET_VALID: '访问令牌尚未生效',
  TOKEN_TOO_OLD: '访问令牌超过最长有效期，请重新获取',
  TOKEN_CLAIM_MISSING: '访问令牌缺少必要信息',
  TOKEN_WRONG_ISSUER: '访问令牌不是本平台签发的',
  TOKEN_WRONG_AUDIENCE: '访问令牌不是为本平台签发的',
  TOKEN_WRONG_TYPE: '该令牌不是访问令牌',
  PRINCIPAL_UNKNOWN: '平台上没有该账户',
  PRINCIPAL_DISABLED: '该账户已停用',
  TOKEN_REVOKED: '访问令牌已被撤销',
  SELF_DISABLE: '不能停用自己的账户',
  FORBIDDEN: '无权进行此操作',
  LICENCE_INACTIVE: '授权运营许可不在有效状态',
  LICENCE_NOT_IN_FORCE: '授权运营许可不在有效期内',
  CATALOGUE_CHANGED: '数据目录已变更，请重新提交',
  POLICY_CHANGED: '披露策略已变更，请重新提交',
  SHARING_WITHDRAWN: '该数据已不再按原条件共享',
  NOT_FOUND: '未找到（或无权查看）',
  CONFLICT: '与当前状态冲突，请刷新后再试',
  DATASET_EXISTS: '已有同一标识的数据集',
  VERSION_EXISTS: '该版本已存在',
  SCHEMA_MISMATCH: '文件的字段与登记的数据结构不符',
  FILE_UNREADABLE: '文件无法读取',
  INVALID_TRANSITION: '当前状态下不能进行此操作',
  DEV_TOKENS_DISABLED: '本部署未开放开发令牌',
  RESULT_NOT_AVAILABLE: '结果尚不可获取',
  SELF_REVIEW: '不能审核自己提交的任务或产品',
  DUPLICATE_REVIEW: '已审核过',
  RATE_LIMITED: '请求过于频繁，请稍后再试',
  DAILY_QUOTA_EXCEEDED: '今日调用次数已达上限',
  SUBJECT_QUOTA_EXCEEDED: '该对象今日被核验的次数已达上限',
  CONSUMER_THROTTLED: '因疑似批量试探，调用已被限制并报告监管部门',
  PUBLIC_INTEREST_NOT_GRANTED: '未获准以公共利益用途调用',
  CIPHERTEXT_REJECTED: '密文不符合服务器的加密参数或大小',
  ENCRYPTED_MODE_UNAVAILABLE: '该产品不提供加密调用',
  PRODUCT_NOT_CALLABLE: '该产品当前不可调用',
  WRONG_PRODUCT_KIND: '该产品不是这种类型',
  CHANNEL_FROZEN: '共享通道已冻结',
  CHANNEL_CLOSED: '共享通道已关闭',
  CHANNEL_SUSPENDED: '共享通道已暂停',
  CHANNEL_BEYOND_SCOPE: '超出共享通道的范围，已报告监管部门',
  CHANNEL_VOLUME_EXCEEDED: '超出共享通道的数据量限额',
  NOT_HELD: '本单位未通过共享通道持有该数据',
  REGISTRATION_INCOMPLETE: '技术审查发现问题，请退回登记',
  CHANGE_NEEDS_NEW_DATASET: '数据结构的变更须登记为新数据集',
  NO_CHANGE: '没有任何变更',
  IDEMPOTENCY_KEY_REUSED: '同一幂等键已用于另一请求',
  TRIAL_BUSY: '服务器上有其他试运行在排队，请稍后再试',
  ALREADY_OPEN: '该数据已经开放',
  TOO_MANY_OPEN_DEMANDS: '未答复的开放需求过多，请等待答复',
  DATASET_NOT_IN_LICENCE: '该许可不涵盖此数据集',
  COLUMN_CLASS_SUSPECT: '有列的取值像个人标识（身份证号、手机号、电子邮箱、银行卡号、护照或通行证号、姓名或拼音姓名），但登记的分类不是标识符：请先在目录修订中把该列改为直接标识符或准标识符',
  INTERNAL: '平台内部错误（已记录，不含细节）',
};

/** Codes the console or the client library raises itself, not the server. */
const clientMeaningInChinese: Record<string, string> = {
  HTTP_ERROR: '服务器未给出说明的错误',
  CLIENT_ERROR: '浏览器中的加密计算出错',
  UNKNOWN_SIGNING_KEY: '应答由平台未公布的密钥签名',
  WRONG_TYPE: '签名不是对产品应答的签名',
  ANSWER_MISMATCH: '签名与应答内容不符',
  PARAMETERS_DIFFER: '服务器的加密参数与本客户端不同',
  MISSING_INPUT: '缺少必填的输入',
  INVALID_INPUT: '输入不符合产品的要求',
};

// Every policy code (a job's or a product's refusal) has its refusal_ phrase in i18n.ts; this fails to compile
// listing the codes that do not.
type WrittenRefusal = Phrase extends infer Key ? (Key extends `refusal_${infer Code}` ? Code : never) : never;
type UnwrittenRefusal = Exclude<PolicyCode, WrittenRefusal>;
const everyRefusalWritten: Record<UnwrittenRefusal, never> = {};
void everyRefusalWritten;

/** The code's meaning in the page's language, or null where none is written (an unknown code is shown as is). */
export function errorMeaning(code: string): string | null {
  const refusal = tValue('refusal', code);
  if (refusal !== code) return refusal;
  if (currentLanguage() !== 'zh') return null;
  return (meaningInChinese as Record<string, string>)[code] ?? clientMeaningInChinese[code] ?? null;
}

const identifierKindsInChinese: Record<string, string> = {
  'resident ID numbers': '身份证号',
  'mobile numbers': '手机号',
  'e-mail addresses': '电子邮箱',
  'bank card numbers': '银行卡号',
  'passport or travel permit numbers': '护照或通行证号',
  'personal names': '姓名',
  'personal names in pinyin': '拼音姓名',
};
const columnClassesInChinese: Record<string, string> = { attribute: '属性', sensitive: '敏感', 'quasi identifier': '准标识符', 'direct identifier': '直接标识符' };

/**
 * The problems a delivery's refusal names most often (domain-store/load-version.ts, personal-identifiers.ts), in
 * Chinese: the people who deliver data read them first and must act on them. The server's wording is English (logs
 * and clients match on it); a problem not listed here, or worded otherwise, is shown as the server wrote it.
 */
const problemsInChinese: Array<[RegExp, (match: RegExpMatchArray) => string | null]> = [
  [/^(\d+) value\(s\) are not (.+) \(first at data row (\d+)\)$/, ([, count, type, row]) => `${count} 个值不是 ${type} 类型（第一个在第 ${row} 行数据）`],
  [/^(\d+) empty value\(s\) in a column that may not be empty \(first at data row (\d+)\)$/, ([, count, row]) => `${count} 个空值，但该列不允许为空（第一个在第 ${row} 行数据）`],
  [/^registered column missing from the file$/, () => '文件中缺少这一登记的列'],
  [/^column not in the registered schema$/, () => '这一列不在登记的字段中'],
  [/^(\d+) key value\(s\) appear on more than one row$/, ([, count]) => `${count} 个键值出现在不止一行`],
  [
    /^(\d+) of (\d+) value\(s\) look like (.+), but the column is classed (.+?): class it a direct identifier \(or a quasi-identifier\) in a catalogue revision first$/,
    ([, count, present, kind, columnClass]) =>
      identifierKindsInChinese[kind!] && columnClassesInChinese[columnClass!]
        ? `${present} 个值中有 ${count} 个像${identifierKindsInChinese[kind!]}，但该列登记为“${columnClassesInChinese[columnClass!]}”：请先在目录修订中改为直接标识符（或准标识符）`
        : null,
  ],
  [
    /^(\d+) value\(s\) look like (.+): open data is published row by row, so personal identifiers may not be in it$/,
    ([, count, kind]) => (identifierKindsInChinese[kind!] ? `${count} 个值像${identifierKindsInChinese[kind!]}：开放数据逐行公开，不得含有个人标识` : null),
  ],
];

const typesInChinese: Record<string, string> = { string: '文本', number: '数字', int: '整数', boolean: '是或否', array: '列表', object: '对象', date: '日期' };
const bound = (sign: string) => (sign === '>=' ? '至少' : sign === '>' ? '大于' : sign === '<=' ? '至多' : '小于');

/** zod's wording of a broken rule (src/errors/validation-error.ts keeps it, never the value), for every form. */
problemsInChinese.push(
  [/^expected (\w+)$/, ([, type]) => (typesInChinese[type!] ? `应为${typesInChinese[type!]}` : null)],
  [/^Too (?:small|big): expected string to have ([<>]=?)(\d+) characters$/, ([, sign, count]) => `长度应${bound(sign!)} ${count} 个字符`],
  [/^Too (?:small|big): expected array to have ([<>]=?)(\d+) items$/, ([, sign, count]) => `应${bound(sign!)}有 ${count} 项`],
  [/^Too (?:small|big): expected number to be ([<>]=?)(-?[\d.e+-]+)$/, ([, sign, limit]) => `应${bound(sign!)} ${limit}`],
  [/^Invalid option: expected one of (.+)$/, ([, options]) => `应为以下之一：${options!.replaceAll('"', '').split('|').join('、')}`],
  [/^Invalid input: expected "(.+)"$/, ([, value]) => `应为 ${value}`],
  [/^does not have the expected form$/, () => '格式不符合要求'],
  [/^invalid email$/, () => '不是有效的电子邮箱地址'],
  [/^unknown field$/, () => '未定义的字段'],
);

/** A problem in the page's language where it is one of those above, else as the server wrote it. */
function problemText(problem: string): string {
  if (currentLanguage() !== 'zh') return problem;
  for (const [pattern, inChinese] of problemsInChinese) {
    const match = problem.match(pattern);
    if (match) return inChinese(match) ?? problem;
  }
  return problem;
}

/** A refusal's detail as a person reads it: the field it names, then what is wrong with it. */
export const detailText = (detail: { path?: string; problem: string }) => `${detail.path ?? ''} ${problemText(detail.problem)}`.trim();

/**
 * One refusal as a line of text: in Chinese its meaning, the code, then the server's message; in English the
 * code and the message, which already say it.
 */
export function describeRefusal(code: string, message: string): string {
  const meaning = currentLanguage() === 'zh' ? errorMeaning(code) : null;
  return meaning ? `${meaning}（${code}）：${message}` : `${code}: ${message}`;
}
