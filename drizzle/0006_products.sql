CREATE TABLE "product_calls" (
	"id" text PRIMARY KEY NOT NULL,
	"product_id" text NOT NULL,
	"consumer_id" text NOT NULL,
	"mode" text NOT NULL,
	"use" text NOT NULL,
	"purpose" text NOT NULL,
	"subject_hash" text NOT NULL,
	"match" boolean,
	"fee_fen" integer NOT NULL,
	"request_hash" text NOT NULL,
	"audit_index" bigint NOT NULL,
	"called_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "products" (
	"id" text PRIMARY KEY NOT NULL,
	"operator_id" text NOT NULL,
	"kind" text NOT NULL,
	"title" text NOT NULL,
	"title_zh" text NOT NULL,
	"terms" text NOT NULL,
	"spec" jsonb NOT NULL,
	"status" text NOT NULL,
	"created_by" text NOT NULL,
	"decided_by" text,
	"decision_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "product_calls" ADD CONSTRAINT "product_calls_product_id_products_id_fk" FOREIGN KEY ("product_id") REFERENCES "public"."products"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "product_calls" ADD CONSTRAINT "product_calls_consumer_id_principals_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "products" ADD CONSTRAINT "products_operator_id_operators_id_fk" FOREIGN KEY ("operator_id") REFERENCES "public"."operators"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "product_calls_consumer_idx" ON "product_calls" USING btree ("consumer_id","called_at");--> statement-breakpoint
CREATE INDEX "product_calls_subject_idx" ON "product_calls" USING btree ("subject_hash","called_at");--> statement-breakpoint
CREATE INDEX "product_calls_product_idx" ON "product_calls" USING btree ("product_id","called_at");--> statement-breakpoint
CREATE INDEX "products_operator_idx" ON "products" USING btree ("operator_id");