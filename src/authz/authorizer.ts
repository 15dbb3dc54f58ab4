import { AppError } from '../errors/app-error.js';
import type { Database } from '../db/connect.js';
import { noLicenceInForce, principalEntities, type PrincipalRow } from './entities.js';
import type { AuthzDecision, CedarEntity, PolicyEngine } from './policy-engine.js';

export type AuthzOutcome = AuthzDecision & { action: string; resource: string };

/**
 * Asks Cedar about one request, with entities built from the database at that moment.
 * `hideExistence` turns a denial into 404 for objects that belong to someone else, so that another operator
 * cannot learn which ids exist.
 */
export type Denial = { principal: string; operator: string | null; action: string; resource: string; policies: string[] };

export function createAuthorizer(
  engine: PolicyEngine,
  db: Database,
  clock: () => Date = () => new Date(),
  onDenied: (denial: Denial) => Promise<void> = async () => {},
) {
  return {
    async decide(principal: PrincipalRow, action: string, resource: CedarEntity, related: CedarEntity[] = []): Promise<AuthzOutcome> {
      const entities = [...(await principalEntities(db, principal, clock())), resource, ...related];
      const unique = new Map(entities.map((entity) => [`${entity.uid.type}:${entity.uid.id}`, entity]));
      const decision = engine.authorize({
        principal: { type: 'User', id: principal.id },
        action,
        resource: resource.uid,
        entities: [...unique.values()],
      });
      return { ...decision, action, resource: `${resource.uid.type}:${resource.uid.id}` };
    },

    async require(
      principal: PrincipalRow,
      action: string,
      resource: CedarEntity,
      options: { related?: CedarEntity[]; hideExistence?: boolean } = {},
    ): Promise<AuthzOutcome> {
      const outcome = await this.decide(principal, action, resource, options.related);
      if (outcome.decision === 'allow') return outcome;
      await onDenied({ principal: principal.id, operator: principal.operatorId, action, resource: outcome.resource, policies: outcome.policies });
      throw deniedError(outcome, options.hideExistence ?? false);
    },
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;

function deniedError(outcome: AuthzOutcome, hideExistence: boolean): AppError {
  if (outcome.policies.includes('baseline-disabled-accounts')) {
    return new AppError('PRINCIPAL_DISABLED', 'this account is disabled');
  }
  if (outcome.policies.includes('baseline-unlicensed-operators')) {
    return noLicenceInForce();
  }
  if (hideExistence) return new AppError('NOT_FOUND', `${outcome.resource.split(':')[0]!.toLowerCase()} not found`);
  return new AppError('FORBIDDEN', `not permitted: ${outcome.action}`);
}
