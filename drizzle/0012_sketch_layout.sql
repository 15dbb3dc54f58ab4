DROP INDEX "released_cells_lookup_idx";--> statement-breakpoint
-- Cells released before this migration hold invertible Bloom lookup tables of three sub-tables; they are named so,
-- and never compared with the count-and-XOR sketches written from now on.
ALTER TABLE "released_cells" ADD COLUMN "layout" text NOT NULL DEFAULT 'iblt-3';--> statement-breakpoint
ALTER TABLE "released_cells" ALTER COLUMN "layout" DROP DEFAULT;--> statement-breakpoint
CREATE INDEX "released_cells_lookup_idx" ON "released_cells" USING btree ("lineage","layout","sub_table_size","contributors");
