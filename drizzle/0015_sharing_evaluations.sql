CREATE TABLE "sharing_evaluation_alerts" (
	"dataset_id" text NOT NULL,
	"due_on" text NOT NULL,
	"alerted_at" timestamp with time zone NOT NULL,
	CONSTRAINT "sharing_evaluation_alerts_dataset_id_due_on_pk" PRIMARY KEY("dataset_id","due_on")
);
--> statement-breakpoint
CREATE TABLE "sharing_evaluations" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_id" text NOT NULL,
	"outcome" text NOT NULL,
	"reason" text NOT NULL,
	"revision" integer,
	"evaluated_by" text NOT NULL,
	"evaluated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sharing_evaluation_alerts" ADD CONSTRAINT "sharing_evaluation_alerts_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_evaluations" ADD CONSTRAINT "sharing_evaluations_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "sharing_evaluations_dataset_idx" ON "sharing_evaluations" USING btree ("dataset_id","evaluated_at");