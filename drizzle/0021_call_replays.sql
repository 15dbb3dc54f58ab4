CREATE TABLE "call_replays" (
	"consumer_id" text NOT NULL,
	"key_hash" text NOT NULL,
	"request_hash" text NOT NULL,
	"call_id" text NOT NULL,
	"audit_index" bigint NOT NULL,
	"fee_fen" integer NOT NULL,
	"sealed" "bytea" NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "call_replays_key_hash_pk" PRIMARY KEY("key_hash")
);
--> statement-breakpoint
ALTER TABLE "call_replays" ADD CONSTRAINT "call_replays_consumer_id_principals_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "call_replays_expiry_idx" ON "call_replays" USING btree ("expires_at");