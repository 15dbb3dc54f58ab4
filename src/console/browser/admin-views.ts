import { api, ApiError, errorText } from './api.js';
import { formatTime, h, statusBadge, table } from './dom.js';
import { t, tValue } from './i18n.js';

/**
 * The data centre's backups (art. 11): one button backs up the running server (the server picks the folder under
 * PDS_BACKUP_DIR), and the history — read from the audit log — shows every backup and restore with its manifest's
 * hash, so the copy taken off the machine can be matched to the record.
 */
export async function backupsPage(rerender: () => void): Promise<HTMLElement> {
  const { backups } = await api<{ backups: any[] }>('GET', '/v1/backups');
  const message = h('span', { class: 'muted message', id: 'backup-message' });
  const backUp = async () => {
    try {
      await api('POST', '/v1/backups');
      rerender();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.textContent = errorText(error);
    }
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('backups')),
    h('p', { class: 'muted' }, t('backupsIntro')),
    h('div', { class: 'actions' }, h('button', { id: 'backup-now', onclick: () => void backUp() }, t('backUpNow')), message),
    backups.length
      ? table(
          [t('time'), t('kind'), t('actor'), t('folder'), t('tablesAndRows'), t('snapshots'), 'MiB', t('manifestHash')],
          backups.map((entry) => [
            formatTime(entry.at),
            t(entry.kind === 'backup' ? 'backupKind' : 'restoreKind'),
            entry.actor,
            entry.folder ?? '—',
            `${entry.tables} / ${entry.rows}`,
            entry.snapshots,
            (entry.bytes / 2 ** 20).toFixed(1),
            h('code', { title: entry.manifestSha256 }, String(entry.manifestSha256).slice(0, 16)),
          ]),
          { id: 'backups-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
}

/**
 * Accounts (admins): who holds one, for which operator or institution, and whether it is disabled. Disabling asks for
 * the reason the admin writes (the field starts empty) and revokes the account's tokens for good.
 */
export async function accountsPage(rerender: () => void, self: { id: string }): Promise<HTMLElement> {
  const { principals } = await api<{ principals: any[] }>('GET', '/v1/principals');
  const message = h('p', { class: 'error', id: 'accounts-message' });
  const change = async (id: string, status: 'active' | 'disabled', reason: string) => {
    if (!reason.trim()) {
      message.textContent = t('reasonRequired');
      return;
    }
    try {
      await api('POST', `/v1/principals/${encodeURIComponent(id)}/status`, { status, reason });
      rerender();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.textContent = errorText(error);
    }
  };
  const actions = (principal: any) => {
    if (principal.id === self.id) return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    const next = principal.status === 'active' ? 'disabled' : 'active';
    return h(
      'div',
      { class: 'actions' },
      reason,
      h('button', { class: next === 'disabled' ? 'secondary' : '', onclick: () => void change(principal.id, next, reason.value) }, t(next === 'disabled' ? 'disable' : 'enable')),
    );
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('accounts')),
    h('p', { class: 'muted' }, t('accountsIntro')),
    message,
    table(
      [t('principal'), t('role'), t('belongsTo'), t('status'), ''],
      principals.map((principal) => [
        h('span', { 'data-principal': principal.id }, principal.displayName, h('br'), h('small', { class: 'muted' }, principal.id)),
        h('span', { title: principal.role }, tValue('role', principal.role)),
        principal.operatorId ?? principal.institutionId ?? '—',
        h('span', {}, statusBadge(principal.status), principal.statusReason ? h('small', { class: 'muted' }, ` ${principal.statusReason}`) : ''),
        actions(principal),
      ]),
      { id: 'accounts-table' },
    ),
  );
}
