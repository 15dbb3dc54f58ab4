CREATE TABLE "released_cells" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"lineage" text NOT NULL,
	"sub_table_size" integer NOT NULL,
	"contributors" integer NOT NULL,
	"sketch" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "released_cells" ADD CONSTRAINT "released_cells_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "released_cells_lookup_idx" ON "released_cells" USING btree ("lineage","sub_table_size","contributors");