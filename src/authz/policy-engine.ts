import fs from 'node:fs';
import path from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export type EntityUid = { type: string; id: string };
export type CedarEntity = { uid: EntityUid; attrs: Record<string, cedar.CedarValueJson>; parents: EntityUid[] };

/** An authorization decision as a value: which policies decided it, and any policy that failed to evaluate. */
export type AuthzDecision = {
  decision: 'allow' | 'deny';
  /** Ids (`@id(...)`) of the policies that determined the decision: permits for allow, forbids for deny. */
  policies: string[];
  errors: string[];
};

export type AuthzRequest = {
  principal: EntityUid;
  action: string;
  resource: EntityUid;
  context?: Record<string, cedar.CedarValueJson>;
  entities: CedarEntity[];
};

export class PolicyLoadError extends Error {
  static readonly code = 'ERR_POLICY_LOAD';
}

const namespace = 'PDS';
let engineCounter = 0;

/**
 * Loads `authz.cedarschema` and every `*.cedar` file of a folder, validates the policies against the schema
 * (strict mode) and pre-parses them once; each decision then costs tens of microseconds.
 * Every policy must carry `@id("...")`: decisions and tests name policies by it.
 */
export function loadPolicyEngine(policiesDir: string) {
  const schemaText = fs.readFileSync(path.join(policiesDir, 'authz.cedarschema'), 'utf8');
  const policies: Record<string, string> = {};
  const files = fs.readdirSync(policiesDir).filter((file) => file.endsWith('.cedar')).sort();
  for (const file of files) {
    const parts = cedar.policySetTextToParts(fs.readFileSync(path.join(policiesDir, file), 'utf8'));
    if (parts.type === 'failure') throw new PolicyLoadError(`${file}: ${parts.errors.map((e) => e.message).join('; ')}`);
    for (const text of parts.policies) {
      const json = cedar.policyToJson(text);
      if (json.type === 'failure') throw new PolicyLoadError(`${file}: ${json.errors.map((e) => e.message).join('; ')}`);
      const id = json.json.annotations?.id;
      if (!id) throw new PolicyLoadError(`${file}: every policy needs an @id annotation`);
      if (policies[id]) throw new PolicyLoadError(`${file}: policy id ${id} is used twice`);
      policies[id] = text;
    }
  }
  const validation = cedar.validate({
    schema: schemaText,
    policies: { staticPolicies: policies },
    validationSettings: { mode: 'strict' },
  });
  if (validation.type === 'failure') {
    throw new PolicyLoadError(validation.errors.map((e) => e.message).join('; '));
  }
  if (validation.validationErrors.length > 0) {
    throw new PolicyLoadError(
      validation.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`).join('; '),
    );
  }
  // Pre-parsed sets live in the WASM module's memory under a name; a unique name per engine keeps engines apart.
  const setId = `pds-policies-${++engineCounter}`;
  const schemaName = `pds-schema-${engineCounter}`;
  const parsedPolicies = cedar.preparsePolicySet(setId, { staticPolicies: policies });
  if (parsedPolicies.type === 'failure') throw new PolicyLoadError(parsedPolicies.errors.map((e) => e.message).join('; '));
  const parsedSchema = cedar.preparseSchema(schemaName, schemaText);
  if (parsedSchema.type === 'failure') throw new PolicyLoadError(parsedSchema.errors.map((e) => e.message).join('; '));

  // A decision is a pure function of the fixed policy set and the request with its entities, so identical
  // requests (the same principal, action, resource and attributes, as hot product calls are) reuse it.
  const decisions = new Map<string, AuthzDecision>();
  const decisionCacheSize = 5000;

  return {
    policyIds: Object.keys(policies).sort(),
    authorize(request: AuthzRequest): AuthzDecision {
      const key = JSON.stringify(request);
      const known = decisions.get(key);
      if (known) return known;
      const decision = decide(request);
      if (decisions.size >= decisionCacheSize) decisions.delete(decisions.keys().next().value!);
      decisions.set(key, decision);
      return decision;
    },
  };

  function decide(request: AuthzRequest): AuthzDecision {
      const answer = cedar.statefulIsAuthorized({
        principal: qualified(request.principal),
        action: { type: `${namespace}::Action`, id: request.action },
        resource: qualified(request.resource),
        context: request.context ?? {},
        entities: request.entities.map((entity) => ({
          uid: qualified(entity.uid),
          attrs: entity.attrs,
          parents: entity.parents.map(qualified),
        })),
        preparsedPolicySetId: setId,
        preparsedSchemaName: schemaName,
        validateRequest: true,
      });
      if (answer.type === 'failure') {
        // A malformed request is a bug on our side; deny (fail closed) and say why for the logs.
        return { decision: 'deny', policies: [], errors: answer.errors.map((e) => e.message) };
      }
      return {
        decision: answer.response.decision,
        policies: [...answer.response.diagnostics.reason].sort(),
        errors: answer.response.diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      };
  }
}

export type PolicyEngine = ReturnType<typeof loadPolicyEngine>;

function qualified(uid: EntityUid): EntityUid {
  return uid.type.includes('::') ? uid : { type: `${namespace}::${uid.type}`, id: uid.id };
}

/** Entity attribute helper: a reference to another entity. */
export const entityRef = (type: string, id: string): cedar.CedarValueJson => ({
  __entity: { type: `${namespace}::${type}`, id },
});
