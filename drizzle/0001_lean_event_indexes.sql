DROP INDEX "webhook_events_status_received";--> statement-breakpoint
ALTER TABLE "call_syncs" ADD COLUMN "pending_since" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE INDEX "webhook_events_received" ON "webhook_events" USING btree ("received_at");--> statement-breakpoint
-- Rows that existed before the column: their first event is the best estimate.
UPDATE "call_syncs" SET "pending_since" = "first_event_at";
