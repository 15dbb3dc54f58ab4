import { eq } from 'drizzle-orm';
import { principals, products } from '../db/schema.js';
import type { Platform } from '../platform.js';
import type { ProductDefinition } from '../products/product-spec.js';
import { decideProduct, defineProduct, publishProduct } from '../products/products.js';

const residentId = '[0-9]{17}[0-9X]';
// GB 32100-2015: 18 characters from digits and capital letters without I, O, S, V, Z.
const creditCode = '[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}';

/** The three verification products DESIGN section 5 names, defined by the demo credit-services operator. */
export const demoProducts: ProductDefinition[] = [
  {
    id: 'resident-identity',
    title: 'Resident name and ID number match',
    titleZh: '居民姓名与身份证号一致性核验',
    terms: '仅用于经本人授权的实名核验；每次调用须说明用途。Only for real-name checks the person has consented to; state the purpose of every call.',
    spec: {
      kind: 'verification',
      dataset: 'residents',
      inputs: [
        { name: 'id_number', description: '18-digit resident ID number (GB 11643)', descriptionZh: '18位公民身份号码', pattern: residentId, checksum: 'gb11643', maxLength: 18, example: '310115199001011232' },
        { name: 'name', description: 'Full name as registered', descriptionZh: '登记姓名', maxLength: 50, example: '王伟' },
      ],
      subject: [{ input: 'id_number', column: 'resident_id' }],
      claims: [{ input: 'name', column: 'name' }],
      perSubjectDailyLimit: 5,
    },
  },
  {
    id: 'enterprise-identity',
    title: 'Enterprise credit code, name and legal representative match',
    titleZh: '企业统一社会信用代码、名称与法定代表人一致性核验',
    terms: '用于业务往来中的企业身份核验。For checking a business counterparty’s identity.',
    spec: {
      kind: 'verification',
      dataset: 'enterprises',
      inputs: [
        { name: 'credit_code', description: 'Unified social credit code (GB 32100)', descriptionZh: '统一社会信用代码', pattern: creditCode, checksum: 'gb32100', maxLength: 18, example: '91310115MA1H7XQ08N' },
        { name: 'name', description: 'Registered name', descriptionZh: '企业名称', maxLength: 100, example: '临港智造科技有限公司' },
        { name: 'legal_representative', description: "Legal representative's name", descriptionZh: '法定代表人姓名', maxLength: 50, example: '李娜' },
      ],
      subject: [{ input: 'credit_code', column: 'uscc' }],
      claims: [
        { input: 'name', column: 'name' },
        { input: 'legal_representative', column: 'legal_rep_name' },
      ],
      perSubjectDailyLimit: 20,
    },
  },
  {
    id: 'enterprise-power-payment',
    title: 'Enterprise paid its power bills on time for the last 12 months',
    titleZh: '企业近12个月电费按时缴纳核验',
    terms: '用于信贷审批中的经营状况核验，须取得企业授权。For credit decisions, with the enterprise’s consent.',
    spec: {
      kind: 'verification',
      dataset: 'power_readings',
      inputs: [{ name: 'credit_code', description: 'Unified social credit code (GB 32100)', descriptionZh: '统一社会信用代码', pattern: creditCode, checksum: 'gb32100', maxLength: 18, example: '91310115MA1H7XQ08N' }],
      subject: [{ input: 'credit_code', column: 'uscc' }],
      claims: [],
      condition: { rows: "customer_type = 'enterprise'", require: 'paid_on_time', minRows: 12, recentMonths: { column: 'month', months: 12 } },
      perSubjectDailyLimit: 20,
    },
  },
];

/** Defines, approves and publishes the demo products through the same checks as any operator's (idempotent). */
export async function ensureDemoProducts(platform: Platform): Promise<void> {
  const [owner] = await platform.db.select().from(principals).where(eq(principals.id, 'analyst-harbour-credit'));
  const [regulator] = await platform.db.select().from(principals).where(eq(principals.id, 'regulator-data-dept'));
  if (!owner || !regulator) return;
  for (const definition of demoProducts) {
    const [existing] = await platform.db.select().from(products).where(eq(products.id, definition.id));
    let product = existing ?? (await defineProduct(platform, owner, definition));
    if (product.status === 'draft') product = await decideProduct(platform, regulator, product, { decision: 'approve', reason: 'Demo product: definition reviewed at installation' });
    if (product.status === 'approved') await publishProduct(platform, owner, product, { action: 'publish' });
  }
}
