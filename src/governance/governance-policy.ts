import { z } from 'zod';
import { readPolicyFile } from '../policy/policy-file.js';

const governancePolicySchema = z.strictObject({
  version: z.literal(1),
  disputes: z.strictObject({ answerWorkingDays: z.number().int().min(1).max(60) }),
  channels: z.strictObject({
    idleDaysBeforeFreeze: z.number().int().min(1).max(3650),
    frozenDaysBeforeClose: z.number().int().min(1).max(3650),
    pullsPerDay: z.number().int().min(1).max(10_000),
  }),
  sharingEvaluation: z.strictObject({ intervalMonths: z.number().int().min(1).max(60) }),
  subjectAccess: z.strictObject({ requestsPerAdminPerDay: z.number().int().min(1).max(10_000) }),
});

/** Deadlines and limits of the governance workflows (policies/governance.yaml). */
export type GovernancePolicy = z.infer<typeof governancePolicySchema>;

export function loadGovernancePolicy(file: string): GovernancePolicy {
  return readPolicyFile(file, governancePolicySchema).data;
}
