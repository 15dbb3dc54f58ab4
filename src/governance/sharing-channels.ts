import crypto from 'node:crypto';
import { and, count, desc, eq, gte, inArray, lt, or } from 'drizzle-orm';
import { appendAuditEvents } from '../audit/audit-log.js';
import { findDataset, latestVersion } from '../catalog/catalogue.js';
import type { Database } from '../db/connect.js';
import { channelPulls, datasets, sharingChannels, sharingRequests } from '../db/schema.js';
import { recordIncident } from './incidents.js';
import { exportColumnsToCsv } from '../domain-store/export-columns.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { chinaDay, chinaDayStart } from '../time/china-time.js';
import type { GovernancePolicy } from './governance-policy.js';

/**
 * Sharing channels (measures art. 17). An approved sharing request opens one channel scoped to the request's
 * dataset, columns and purpose; only the requesting public body pulls through it — operators never receive shared
 * data. A channel left unused is frozen, then closed (a closed channel needs a new request). A pull beyond the
 * scope is refused; a pull beyond the normal volume stops the channel; both are reported to regulators as
 * incidents, with an audit leaf.
 */
export type ChannelRow = typeof sharingChannels.$inferSelect;
type Executor = Pick<Database, 'insert' | 'select' | 'update' | 'execute'>;
const dayMilliseconds = 86_400_000;

/** Opens the channel of an approved request, inside the transaction that approved it. */
export async function openChannel(
  tx: Executor,
  request: typeof sharingRequests.$inferSelect,
  datasetColumns: string[],
  policy: GovernancePolicy,
  now: Date,
): Promise<ChannelRow> {
  const [channel] = await tx
    .insert(sharingChannels)
    .values({
      id: `chan_${crypto.randomUUID()}`,
      requestId: request.id,
      institutionId: request.requesterInstitutionId,
      datasetId: request.datasetId,
      columns: request.columns ?? datasetColumns,
      purpose: `${request.duty} — ${request.scenario}`,
      pullsPerDay: policy.channels.pullsPerDay,
      status: 'open',
      lastUsedAt: now,
      statusChangedAt: now,
      openedAt: now,
    })
    .returning();
  await appendAuditEvents(tx, [{ type: 'channel.opened', actor: 'system', datasets: [request.datasetId], details: { channel: channel!.id, request: request.id, institution: request.requesterInstitutionId, columns: channel!.columns } }], now);
  return channel!;
}

/**
 * Freezes channels idle for longer than the policy allows and closes those frozen for longer still. Runs before
 * every read of channel state (so the answer never depends on when a sweep last ran) and on a timer in the server.
 */
export async function applyIdleRules(platform: Pick<Platform, 'db' | 'clock' | 'governance'>): Promise<void> {
  const now = platform.clock();
  const { idleDaysBeforeFreeze, frozenDaysBeforeClose } = platform.governance.channels;
  const freezeBefore = new Date(now.getTime() - idleDaysBeforeFreeze * dayMilliseconds);
  const closeBefore = new Date(now.getTime() - frozenDaysBeforeClose * dayMilliseconds);
  const due = await platform.db
    .select({ id: sharingChannels.id })
    .from(sharingChannels)
    .where(or(and(eq(sharingChannels.status, 'open'), lt(sharingChannels.lastUsedAt, freezeBefore)), and(eq(sharingChannels.status, 'frozen'), lt(sharingChannels.statusChangedAt, closeBefore))));
  if (due.length === 0) return;
  await platform.db.transaction(async (tx) => {
    // Re-read under lock: another server may have swept or a pull may have just used the channel.
    const rows = await tx.select().from(sharingChannels).where(inArray(sharingChannels.id, due.map((row) => row.id))).for('update');
    for (const channel of rows) {
      // Each change takes effect when it fell due, not when a sweep noticed it, so the outcome never depends on
      // how often anyone looked: a channel idle long enough to be frozen and then closed is closed.
      let { status, statusChangedAt } = channel;
      const events: Array<{ status: 'frozen' | 'closed'; at: Date; reason: string }> = [];
      if (status === 'open' && channel.lastUsedAt < freezeBefore) {
        statusChangedAt = new Date(channel.lastUsedAt.getTime() + idleDaysBeforeFreeze * dayMilliseconds);
        status = 'frozen';
        events.push({ status, at: statusChangedAt, reason: `unused for more than ${idleDaysBeforeFreeze} days` });
      }
      if (status === 'frozen' && statusChangedAt < closeBefore) {
        statusChangedAt = new Date(statusChangedAt.getTime() + frozenDaysBeforeClose * dayMilliseconds);
        status = 'closed';
        events.push({ status, at: statusChangedAt, reason: `frozen for more than ${frozenDaysBeforeClose} days` });
      }
      if (events.length === 0) continue;
      await tx.update(sharingChannels).set({ status, statusReason: events.at(-1)!.reason, statusChangedAt }).where(eq(sharingChannels.id, channel.id));
      await appendAuditEvents(
        tx,
        events.map((event) => ({ type: `channel.${event.status}`, actor: 'system', datasets: [channel.datasetId], details: { channel: channel.id, institution: channel.institutionId, reason: event.reason, effectiveAt: event.at.toISOString() } })),
        now,
      );
    }
  });
}

/** Channels a principal may see: regulators and the data centre all; a public body its own and those on its data. */
export async function listChannels(platform: Platform, principal: PrincipalRow): Promise<ChannelRow[]> {
  await applyIdleRules(platform);
  if (principal.role === 'regulator' || principal.role === 'admin') return platform.db.select().from(sharingChannels).orderBy(desc(sharingChannels.openedAt));
  if (principal.role !== 'institution' || !principal.institutionId) return [];
  const rows = await platform.db
    .select({ channel: sharingChannels })
    .from(sharingChannels)
    .innerJoin(datasets, eq(datasets.id, sharingChannels.datasetId))
    .where(or(eq(sharingChannels.institutionId, principal.institutionId), eq(datasets.institutionId, principal.institutionId)))
    .orderBy(desc(sharingChannels.openedAt));
  return rows.map((row) => row.channel);
}

export type Delivery = { file: string; rowCount: number; columns: string[]; versionNumber: number; contentHash: string };

/**
 * One pull: checks the channel's state, scope and volume, then writes the columns in scope of the dataset's
 * latest version to a CSV file inside DuckDB (rows never pass through JavaScript). The caller streams and deletes
 * the file. Refused pulls are recorded too: they are what the volume check and regulators count.
 */
export async function pullThroughChannel(platform: Platform, principal: PrincipalRow, channelId: string, requestedColumns: string[] | undefined, options: { forSpreadsheet?: boolean } = {}): Promise<Delivery> {
  await applyIdleRules(platform);
  const [channel] = await platform.db.select().from(sharingChannels).where(eq(sharingChannels.id, channelId));
  // Only the requesting institution pulls; to anyone else the channel does not exist.
  if (!channel || principal.role !== 'institution' || principal.institutionId !== channel.institutionId) throw notFound('channel');
  if (channel.status === 'frozen') throw new AppError('CHANNEL_FROZEN', 'the channel was frozen after a long time unused; ask the data centre to reactivate it');
  if (channel.status === 'closed') throw new AppError('CHANNEL_CLOSED', 'the channel is closed; make a new sharing request (art. 17)');
  if (channel.status === 'suspended') throw new AppError('CHANNEL_SUSPENDED', 'the channel was stopped after access beyond its normal volume; the regulator has been told');
  const columns = [...new Set(requestedColumns ?? channel.columns)];
  const now = platform.clock();

  // The catalogue entry as it is now, not as it was when the request was approved (art. 16: re-evaluated).
  const dataset = (await findDataset(platform.db, channel.datasetId))!;
  await requireStillShared(platform.db, channel, dataset);

  const beyond = columns.filter((column) => !channel.columns.includes(column));
  if (beyond.length > 0) {
    await recordMisuse(platform, channel, principal, columns, 'beyond_scope', { beyondColumns: beyond }, now);
    throw new AppError('CHANNEL_BEYOND_SCOPE', 'the pull asks for columns outside the channel\'s scope; it was refused and reported to the regulator', beyond.map((column) => ({ path: 'columns', problem: `${column} is not in the channel's scope` })));
  }

  const version = await latestVersion(platform.db, channel.datasetId);
  if (!version) throw new AppError('NO_DATA_VERSION', `${channel.datasetId} has no data loaded yet`);
  // The pull is reserved under a lock on the channel, so concurrent pulls cannot together pass the daily volume,
  // nor pass a channel another pull just stopped.
  const reservation = await platform.db.transaction(async (tx) => {
    const [locked] = await tx.select().from(sharingChannels).where(eq(sharingChannels.id, channel.id)).for('update');
    if (locked!.status !== 'open') return { refused: locked!.status } as const;
    const [today] = await tx
      .select({ pulls: count() })
      .from(channelPulls)
      .where(and(eq(channelPulls.channelId, channel.id), eq(channelPulls.outcome, 'delivered'), gte(channelPulls.at, chinaDayStart(chinaDay(now)))));
    if (today!.pulls >= locked!.pullsPerDay) return { overVolume: today!.pulls } as const;
    const id = `pull_${crypto.randomUUID()}`;
    await tx.insert(channelPulls).values({ id, channelId: channel.id, principalId: principal.id, columns, versionId: version.id, outcome: 'delivered', at: now });
    return { id } as const;
  });
  if ('refused' in reservation) throw new AppError('CHANNEL_SUSPENDED', 'the channel was stopped meanwhile');
  if ('overVolume' in reservation) {
    await recordMisuse(platform, channel, principal, columns, 'beyond_volume', { pullsToday: reservation.overVolume, pullsPerDay: channel.pullsPerDay }, now);
    throw new AppError('CHANNEL_VOLUME_EXCEEDED', 'the channel carried its normal daily volume; it has been stopped and the regulator told');
  }

  let exported: { file: string; rowCount: number };
  try {
    exported = await exportColumnsToCsv(platform.store, dataset, version.contentHash, columns, options);
  } catch (error) {
    // Nothing was delivered: the reservation does not count against the day's volume.
    await platform.db.update(channelPulls).set({ outcome: 'refused' }).where(eq(channelPulls.id, reservation.id));
    throw error;
  }
  const { file, rowCount } = exported;

  await platform.db.transaction(async (tx) => {
    await tx.update(channelPulls).set({ rowCount }).where(eq(channelPulls.id, reservation.id));
    await tx.update(sharingChannels).set({ lastUsedAt: now }).where(eq(sharingChannels.id, channel.id));
    await appendAuditEvents(tx, [{ type: 'channel.pulled', actor: principal.id, datasets: [channel.datasetId], details: { channel: channel.id, institution: channel.institutionId, version: version.versionNumber, rows: rowCount, columns } }], now);
  });
  return { file, rowCount, columns, versionNumber: version.versionNumber, contentHash: version.contentHash };
}

/**
 * A channel delivers only on the terms its request was approved on: data since made 不予共享 (none) delivers
 * nothing, and data since made conditional needs the committee's review, which a request approved as
 * unconditional never had; a new request gets it.
 */
async function requireStillShared(db: Database, channel: ChannelRow, dataset: { id: string; sharingType: string; sharingBasis: string | null }): Promise<void> {
  if (dataset.sharingType === 'none') {
    throw new AppError('SHARING_WITHDRAWN', `${dataset.id} is no longer shared (不予共享): ${dataset.sharingBasis ?? 'see its catalogue entry'}; the channel delivers nothing`);
  }
  if (dataset.sharingType === 'conditional') {
    const [request] = await db.select({ sharingType: sharingRequests.sharingType }).from(sharingRequests).where(eq(sharingRequests.id, channel.requestId));
    if (request?.sharingType !== 'conditional') {
      throw new AppError('SHARING_WITHDRAWN', `${dataset.id} is now shared only on conditions the committee reviews (art. 16), which this channel's request was not; make a new sharing request`);
    }
  }
}

async function recordMisuse(platform: Platform, channel: ChannelRow, principal: PrincipalRow, columns: string[], outcome: 'beyond_scope' | 'beyond_volume', detail: Record<string, unknown>, now: Date) {
  await platform.db.transaction(async (tx) => {
    await tx.insert(channelPulls).values({ id: `pull_${crypto.randomUUID()}`, channelId: channel.id, principalId: principal.id, columns, outcome, at: now });
    if (outcome === 'beyond_volume') {
      await tx.update(sharingChannels).set({ status: 'suspended', statusReason: 'access beyond the normal daily volume', statusChangedAt: now }).where(eq(sharingChannels.id, channel.id));
    }
    await recordIncident(tx, { kind: outcome === 'beyond_scope' ? 'channel_over_scope' : 'channel_volume', principalId: principal.id, detail: { datasets: [channel.datasetId], channel: channel.id, institution: channel.institutionId, ...detail } }, now);
    await appendAuditEvents(tx, [{ type: `channel.${outcome.replace('_', '-')}`, actor: principal.id, datasets: [channel.datasetId], details: { channel: channel.id, institution: channel.institutionId, ...detail } }], now);
  });
}

/** The data centre or the committee reactivates a frozen or stopped channel, or closes one; never reopens a closed one. */
export async function changeChannelStatus(platform: Platform, principal: PrincipalRow, channelId: string, action: 'reactivate' | 'close', reason: string): Promise<ChannelRow> {
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [channel] = await tx.select().from(sharingChannels).where(eq(sharingChannels.id, channelId)).for('update');
    if (!channel) throw notFound('channel');
    if (channel.status === 'closed') throw new AppError('CHANNEL_CLOSED', 'a closed channel stays closed; the institution makes a new request');
    if (action === 'reactivate' && channel.status === 'open') throw new AppError('INVALID_TRANSITION', 'the channel is already open');
    const status = action === 'reactivate' ? 'open' : 'closed';
    // Reactivating counts as use, or the idle rule would freeze the channel again at once.
    const [row] = await tx
      .update(sharingChannels)
      .set({ status, statusReason: reason, statusChangedAt: now, ...(status === 'open' ? { lastUsedAt: now } : {}) })
      .where(eq(sharingChannels.id, channelId))
      .returning();
    await appendAuditEvents(tx, [{ type: action === 'reactivate' ? 'channel.reactivated' : 'channel.closed', actor: principal.id, datasets: [channel.datasetId], details: { channel: channel.id, institution: channel.institutionId, reason } }], now);
    return row!;
  });
}

export function toChannelView(channel: ChannelRow, policy: GovernancePolicy) {
  const freezesOn = channel.status === 'open' ? chinaDay(new Date(channel.lastUsedAt.getTime() + policy.channels.idleDaysBeforeFreeze * dayMilliseconds)) : null;
  return {
    id: channel.id,
    request: channel.requestId,
    institution: channel.institutionId,
    dataset: channel.datasetId,
    columns: channel.columns,
    purpose: channel.purpose,
    pullsPerDay: channel.pullsPerDay,
    status: channel.status,
    statusReason: channel.statusReason,
    lastUsedAt: channel.lastUsedAt.toISOString(),
    freezesOn,
    openedAt: channel.openedAt.toISOString(),
  };
}
