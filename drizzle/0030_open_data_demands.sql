CREATE TABLE "open_data_demands" (
	"id" text PRIMARY KEY NOT NULL,
	"requested_by" text NOT NULL,
	"dataset_id" text,
	"subject" text NOT NULL,
	"scenario" text NOT NULL,
	"status" text NOT NULL,
	"answer" text,
	"met_by_dataset_id" text,
	"answered_by" text,
	"answered_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "open_data_demands" ADD CONSTRAINT "open_data_demands_requested_by_principals_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "open_data_demands" ADD CONSTRAINT "open_data_demands_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "open_data_demands" ADD CONSTRAINT "open_data_demands_met_by_dataset_id_datasets_id_fk" FOREIGN KEY ("met_by_dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "open_data_demands_created_idx" ON "open_data_demands" USING btree ("created_at");