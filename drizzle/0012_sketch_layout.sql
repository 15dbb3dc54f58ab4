DROP INDEX "released_cells_lookup_idx";--> statement-breakpoint
-- Cells released before this migration hold three-table sketches that no new sketch can be compared with, with
-- contributor keys stored in the clear (docs/privacy.md): they could never flag a cell again, and are dropped.
DELETE FROM "released_cells";--> statement-breakpoint
ALTER TABLE "released_cells" ADD COLUMN "layout" text NOT NULL;--> statement-breakpoint
CREATE INDEX "released_cells_lookup_idx" ON "released_cells" USING btree ("lineage","layout","sub_table_size","contributors");
