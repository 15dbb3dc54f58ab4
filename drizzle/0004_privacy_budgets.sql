CREATE TABLE "budget_charges" (
	"id" text PRIMARY KEY NOT NULL,
	"budget_id" text NOT NULL,
	"job_id" text NOT NULL,
	"epsilon_micro" bigint NOT NULL,
	"delta_pico" bigint NOT NULL,
	"state" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "privacy_budgets" (
	"id" text PRIMARY KEY NOT NULL,
	"licence_id" text NOT NULL,
	"dataset_id" text NOT NULL,
	"epsilon_cap_micro" bigint NOT NULL,
	"epsilon_spent_micro" bigint DEFAULT 0 NOT NULL,
	"delta_cap_pico" bigint DEFAULT 0 NOT NULL,
	"delta_spent_pico" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "budget_charges" ADD CONSTRAINT "budget_charges_budget_id_privacy_budgets_id_fk" FOREIGN KEY ("budget_id") REFERENCES "public"."privacy_budgets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "privacy_budgets" ADD CONSTRAINT "privacy_budgets_licence_id_licences_id_fk" FOREIGN KEY ("licence_id") REFERENCES "public"."licences"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "privacy_budgets" ADD CONSTRAINT "privacy_budgets_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "budget_charges_job_budget_idx" ON "budget_charges" USING btree ("job_id","budget_id");--> statement-breakpoint
CREATE UNIQUE INDEX "privacy_budgets_licence_dataset_idx" ON "privacy_budgets" USING btree ("licence_id","dataset_id");