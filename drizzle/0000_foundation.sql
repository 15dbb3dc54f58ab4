CREATE TABLE "dataset_versions" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_id" text NOT NULL,
	"version_number" integer NOT NULL,
	"content_hash" text NOT NULL,
	"source_hash" text NOT NULL,
	"source_format" text NOT NULL,
	"row_count" bigint NOT NULL,
	"byte_size" bigint NOT NULL,
	"catalogue_version" integer NOT NULL,
	"loaded_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "datasets" (
	"id" text PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"title_zh" text NOT NULL,
	"description" text NOT NULL,
	"institution_id" text NOT NULL,
	"category" text NOT NULL,
	"grade" text NOT NULL,
	"open_data" boolean DEFAULT false NOT NULL,
	"sharing_type" text NOT NULL,
	"sharing_basis" text,
	"legal_basis" text NOT NULL,
	"update_frequency" text NOT NULL,
	"privacy_unit" text NOT NULL,
	"columns" jsonb NOT NULL,
	"catalogue_version" integer DEFAULT 1 NOT NULL,
	"registered_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "institutions" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"name_zh" text NOT NULL,
	"kind" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "licences" (
	"id" text PRIMARY KEY NOT NULL,
	"operator_id" text NOT NULL,
	"title" text NOT NULL,
	"scope" jsonb NOT NULL,
	"purposes" jsonb NOT NULL,
	"max_grade" text NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_until" timestamp with time zone NOT NULL,
	"fee_mode" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"status_reason" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "operators" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"name_zh" text,
	"credit_code" text,
	"status" text DEFAULT 'active' NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "principals" (
	"id" text PRIMARY KEY NOT NULL,
	"role" text NOT NULL,
	"display_name" text NOT NULL,
	"operator_id" text,
	"institution_id" text,
	"status" text DEFAULT 'active' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dataset_versions" ADD CONSTRAINT "dataset_versions_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_institution_id_institutions_id_fk" FOREIGN KEY ("institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "licences" ADD CONSTRAINT "licences_operator_id_operators_id_fk" FOREIGN KEY ("operator_id") REFERENCES "public"."operators"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "principals" ADD CONSTRAINT "principals_operator_id_operators_id_fk" FOREIGN KEY ("operator_id") REFERENCES "public"."operators"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "principals" ADD CONSTRAINT "principals_institution_id_institutions_id_fk" FOREIGN KEY ("institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dataset_versions_number_idx" ON "dataset_versions" USING btree ("dataset_id","version_number");--> statement-breakpoint
CREATE UNIQUE INDEX "dataset_versions_source_idx" ON "dataset_versions" USING btree ("dataset_id","source_hash");--> statement-breakpoint
CREATE INDEX "licences_operator_idx" ON "licences" USING btree ("operator_id");--> statement-breakpoint
CREATE INDEX "principals_operator_idx" ON "principals" USING btree ("operator_id");