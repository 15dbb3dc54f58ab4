CREATE TABLE "consumer_quotas" (
	"consumer_id" text PRIMARY KEY NOT NULL,
	"day" text NOT NULL,
	"calls_today" integer NOT NULL,
	"product_calls_today" jsonb NOT NULL,
	"month" text NOT NULL,
	"fees_this_month_fen" bigint NOT NULL,
	"throttled_until" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "consumer_quotas" ADD CONSTRAINT "consumer_quotas_consumer_id_principals_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- Counts of what was already called today and this month (China Standard Time, UTC+8), so that the limits hold
-- across the upgrade: they were kept only in the API process's memory, seeded from product_calls. (A subject's
-- checks are counted from product_calls itself.)
WITH here AS (
	SELECT (now() AT TIME ZONE 'UTC') + interval '8 hours' AS local_now
), periods AS (
	SELECT to_char(local_now, 'YYYY-MM-DD') AS day, to_char(local_now, 'YYYY-MM') AS month,
		(date_trunc('day', local_now) - interval '8 hours') AT TIME ZONE 'UTC' AS day_start,
		(date_trunc('month', local_now) - interval '8 hours') AT TIME ZONE 'UTC' AS month_start
	FROM here
), per_consumer AS (
	SELECT calls.consumer_id, count(*) FILTER (WHERE calls.called_at >= periods.day_start) AS calls_today, sum(calls.fee_fen) AS fees
	FROM "product_calls" calls, periods WHERE calls.called_at >= periods.month_start GROUP BY calls.consumer_id
), per_product AS (
	SELECT consumer_id, jsonb_object_agg(product_id, calls) AS products FROM (
		SELECT calls.consumer_id, calls.product_id, count(*) AS calls
		FROM "product_calls" calls, periods WHERE calls.called_at >= periods.day_start AND calls.mode IN ('score', 'score_encrypted') GROUP BY calls.consumer_id, calls.product_id
	) scored GROUP BY consumer_id
)
INSERT INTO "consumer_quotas" ("consumer_id", "day", "calls_today", "product_calls_today", "month", "fees_this_month_fen", "throttled_until")
SELECT per_consumer.consumer_id, periods.day, per_consumer.calls_today, coalesce(per_product.products, '{}'::jsonb), periods.month, per_consumer.fees, NULL
FROM per_consumer LEFT JOIN per_product USING (consumer_id), periods;
