ALTER TABLE "disputes" ADD COLUMN "overdue_alerted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "sharing_requests" ADD COLUMN "overdue_alerted_at" timestamp with time zone;