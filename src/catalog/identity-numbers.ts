/**
 * Check characters of Chinese identifiers: product inputs are checked with them before any lookup (a mistyped
 * number is refused, not answered "no match" and metered), and the demo data is generated to pass them. The same
 * rules run inside DuckDB as quality rules (domain-store/quality-check.ts).
 */

const residentIdWeights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const residentIdCheckCharacters = '10X98765432';

/** GB 11643-1999 check character of the first 17 digits of a resident ID number (ISO 7064 MOD 11-2). */
export function residentIdCheckCharacter(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new RangeError('a resident ID body is 17 digits');
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * residentIdWeights[i]!;
  return residentIdCheckCharacters[sum % 11]!;
}

export function isValidResidentId(id: string): boolean {
  return /^\d{17}[\dX]$/.test(id) && residentIdCheckCharacter(id.slice(0, 17)) === id[17];
}

const creditCodeAlphabet = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const creditCodeWeights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/** GB 32100-2015 check character of the first 17 characters of a unified social credit code. */
export function creditCodeCheckCharacter(first17: string): string {
  if (first17.length !== 17) throw new RangeError('a credit code body is 17 characters');
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const value = creditCodeAlphabet.indexOf(first17[i]!);
    if (value < 0) throw new RangeError('credit codes use digits and capitals other than I, O, S, V, Z');
    sum += value * creditCodeWeights[i]!;
  }
  return creditCodeAlphabet[(31 - (sum % 31)) % 31]!;
}

export function isValidCreditCode(code: string): boolean {
  return /^[0-9A-HJ-NPQRTUWXY]{18}$/.test(code) && creditCodeCheckCharacter(code.slice(0, 17)) === code[17];
}

const organizationCodeWeights = [3, 7, 9, 10, 5, 8, 4, 2];

/** GB 11714-1997 check character of an 8-character organization code body (positions 9–17 of a credit code). */
export function organizationCodeCheckCharacter(body8: string): string {
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    const character = body8[i]!;
    const value = /\d/.test(character) ? Number(character) : character.charCodeAt(0) - 55;
    sum += value * organizationCodeWeights[i]!;
  }
  const check = 11 - (sum % 11);
  return check === 10 ? 'X' : check === 11 ? '0' : String(check);
}

/** Builds a credit code: 9 (market regulator) 1 (enterprise), area code, organization code, check character. */
export function makeCreditCode(areaCode: string, organizationBody8: string): string {
  const first17 = `91${areaCode}${organizationBody8}${organizationCodeCheckCharacter(organizationBody8)}`;
  return first17 + creditCodeCheckCharacter(first17);
}

export interface PersonalIdentifierForm {
  kind: string;
  /** The whole value's form. */
  pattern: string;
  /** Values that also match this (anywhere) are not of the form. */
  unless?: string;
  /** Text every value of the form contains: values without it are not matched against the pattern at all (cheaper). */
  contains?: string;
  /** The digits must also pass the Luhn check. */
  luhn?: true;
  /** The share of a column's values that must have the form, where other values take it by chance. */
  minimumShare?: number;
  /** How many different values of the form a column must hold (estimated), where a few categories could take it. */
  minimumDistinct?: number;
}

/**
 * The hundred or so most common surnames of the mainland (together about nine in ten people, by the Ministry of
 * Public Security's 2020 count), and compound surnames.
 */
const commonSurnames =
  '王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付傅方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文施洪辛柯庄殷倪葛';
const compoundSurnames = ['欧阳', '司马', '上官', '诸葛', '东方', '皇甫', '尉迟', '公孙', '慕容', '令狐', '司徒', '夏侯', '长孙', '宇文'];
/** The same surnames in pinyin (ü written v or u, as passports and keyboards do), longest first for the pattern. */
const pinyinSurnames = [
  ...['ouyang', 'sima', 'shangguan', 'zhuge', 'dongfang', 'huangfu', 'yuchi', 'gongsun', 'murong', 'linghu', 'situ', 'xiahou', 'zhangsun', 'yuwen'],
  ...['wang', 'li', 'zhang', 'liu', 'chen', 'yang', 'huang', 'zhao', 'wu', 'zhou', 'xu', 'sun', 'ma', 'zhu', 'hu', 'guo', 'he', 'lin', 'luo', 'gao'],
  ...['zheng', 'liang', 'xie', 'song', 'tang', 'han', 'feng', 'deng', 'cao', 'peng', 'zeng', 'xiao', 'tian', 'dong', 'pan', 'yuan', 'cai', 'jiang'],
  ...['yu', 'du', 'ye', 'cheng', 'wei', 'su', 'lv', 'lu', 'ding', 'ren', 'yao', 'shen', 'zhong', 'cui', 'tan', 'fan', 'liao', 'shi', 'jin', 'jia'],
  ...['xia', 'fu', 'fang', 'zou', 'xiong', 'bai', 'meng', 'qin', 'qiu', 'hou', 'yin', 'xue', 'yan', 'duan', 'lei', 'long', 'tao', 'mao', 'hao'],
  ...['gu', 'gong', 'shao', 'wan', 'qian', 'dai', 'mo', 'kong', 'xiang', 'chang', 'kang', 'yi', 'qiao', 'lai', 'wen', 'hong', 'xin', 'ke'],
  ...['zhuang', 'ni', 'ge'],
].sort((a, b) => b.length - a.length);
/** One pinyin syllable without tone marks: an initial (or none) and a final. */
const pinyinSyllable = '(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|ua|uo|ui|ue|ve|er|a|o|e|i|u|v)';
/** A given name of one or two syllables, written as one word (Xiaoming), with a hyphen or an apostrophe between. */
const pinyinGiven = `${pinyinSyllable}(?:[-']?${pinyinSyllable})?`;
/** Last characters of places, roads and organisations, which names hardly ever end in. */
const placeAndOrganisationEndings = '省市县区镇乡村街路道站港湾桥苑弄巷厂司局院所部委会店馆业场队校';

/**
 * Values a person is named by, recognised by their whole form (RE2 patterns, as DuckDB's regexp_full_match reads
 * them): an 18-character resident ID number with a plausible date of birth, a mainland mobile number (with or
 * without +86 and separators), an e-mail address, a bank card number, a passport or travel permit number, a Chinese name
 * (in characters or in pinyin). Used to catch a column of them registered
 * under a class that lets its values out (src/domain-store/personal-identifiers.ts).
 *
 * A bank card number (16 to 19 digits, the first 3–6 as UnionPay, Visa, Mastercard, JCB and Amex issue, written
 * whole or in groups of four) must also pass the Luhn check every card number carries. One in ten digit strings of
 * that shape passes it by chance, so a column of meter or account numbers would have a tenth of "card numbers":
 * `minimumShare` asks for more than half of a column's values, where a column of card numbers has all of them.
 */
export const personalIdentifierForms: ReadonlyArray<PersonalIdentifierForm> = [
  { kind: 'resident ID numbers', pattern: '^[0-9]{6}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$' },
  { kind: 'mobile numbers', pattern: '^(\\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}$' },
  { kind: 'e-mail addresses', pattern: '^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}$' },
  { kind: 'bank card numbers', pattern: '^[3-6][0-9]{3}([- ]?[0-9]{4}){3}([- ]?[0-9]{1,3})?$', luhn: true, minimumShare: 0.5 },
  // Passports of the People's Republic (E and 8 digits, E, a letter and 7 digits since 2019, G and 8 digits before
  // 2012) and travel permits for Hong Kong and Macao (C and 8 digits, C, a letter and 7 digits). Short codes of
  // that shape are plausible for equipment too, so half a column must be of it.
  { kind: 'passport or travel permit numbers', pattern: '^([ECG][0-9]{8}|[EC][A-HJ-NP-Z][0-9]{7})$', minimumShare: 0.5 },
  // A Chinese personal name: a common surname and one or two characters (two for a compound surname). Place, road
  // and organisation names take that shape too (万祥镇, 高桥路, 金融业), so a value ending as they do is not counted,
  // and a column must be more than half names with at least 30 different ones: five towns or a list of industries
  // cannot reach that, a register of people does.
  { kind: 'personal names', pattern: `^(${compoundSurnames.join('|')})\\p{Han}{1,2}$|^[${commonSurnames}]\\p{Han}{1,2}$`, unless: `[${placeAndOrganisationEndings}]$`, minimumShare: 0.5, minimumDistinct: 30 },
  // The same names in pinyin, as passports, bank records and forms in Latin letters write them: a surname and a given
  // name of one or two syllables, either first (ZHANG Wei, Zhang Xiaoming, Wei Zhang, Ouyang Na), in any case,
  // separated by spaces or a comma. Two pinyin words are also the shape of some places and brands, so, as for names
  // in characters, more than half a column and at least 30 different ones.
  { kind: 'personal names in pinyin', contains: ' ', pattern: `(?i)^(${pinyinSurnames.join('|')}),? +${pinyinGiven}$|^${pinyinGiven} +(${pinyinSurnames.join('|')})$`, minimumShare: 0.5, minimumDistinct: 30 },
];

/** The Luhn check of a card number's digits (separators already removed). */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    const digit = Number(digits[digits.length - 1 - index]);
    sum += index % 2 === 0 ? digit : digit * 2 - (digit >= 5 ? 9 : 0);
  }
  return sum % 10 === 0;
}

/**
 * The personal identifiers a line of free text can hold that the platform can recognise: an 18-character resident
 * ID number (with a plausible date of birth; its check character is not required, since a mistyped number is
 * still a person's) and a mainland mobile number (with or without +86 and separators). Full-width digits count,
 * as people type them. Used to keep personal data out of text every account reads (an open-data demand), never to
 * decide that text without a match is free of it.
 */
export function personalIdentifiersIn(text: string): Array<'resident ID number' | 'mobile number' | 'bank card number'> {
  const plain = text.normalize('NFKC');
  const found: Array<'resident ID number' | 'mobile number' | 'bank card number'> = [];
  const residentIdForm = /(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])/;
  if (residentIdForm.test(plain)) found.push('resident ID number');
  if (/(?<![0-9A-Za-z+])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9A-Za-z])/.test(plain)) found.push('mobile number');
  // A card number must pass its Luhn check here too. One in ten other numbers of that shape passes by chance, but
  // such long numbers are rare in a sentence, and the refusal says what it saw so the writer can reword. An ID
  // number (18 digits) is not taken for a card.
  const cards = plain.matchAll(/(?<![0-9A-Za-z])[3-6]\d{3}(?:[- ]?\d{4}){3}(?:[- ]?\d{1,3})?(?![0-9A-Za-z])/g);
  if ([...cards].some(([card]) => !residentIdForm.test(card) && passesLuhn(card.replace(/[- ]/g, '')))) found.push('bank card number');
  return found;
}
