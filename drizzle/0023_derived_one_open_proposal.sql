-- Proposals for one dataset id that were stored together before this index existed: the earliest stays open and
-- the later ones are rejected, as approving them could only fail once the first is published.
UPDATE "derived_datasets" AS later SET "status" = 'rejected', "decided_by" = 'system', "decision_reason" = 'a duplicate of an earlier open proposal for the same dataset id', "decided_at" = now()
WHERE later."status" = 'proposed' AND EXISTS (
  SELECT 1 FROM "derived_datasets" AS earlier
  WHERE earlier."dataset_id" = later."dataset_id" AND earlier."status" = 'proposed'
    AND (earlier."created_at", earlier."id") < (later."created_at", later."id")
);--> statement-breakpoint
CREATE UNIQUE INDEX "derived_datasets_one_open_idx" ON "derived_datasets" USING btree ("dataset_id") WHERE status = 'proposed';
