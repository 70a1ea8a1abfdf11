CREATE TABLE "admin_audit" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"action" text NOT NULL,
	"subject" text,
	"ip" text,
	"user_agent" text,
	"via" text NOT NULL,
	"details" jsonb
);
--> statement-breakpoint
CREATE TABLE "call_syncs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"call_key" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"claimed_version" integer,
	"synced_version" integer DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_until" timestamp with time zone,
	"locked_by" text,
	"target" text,
	"crm_id" text,
	"crm_followup_id" text,
	"last_error" text,
	"last_error_kind" text,
	"last_http_status" integer,
	"last_response" jsonb,
	"activity" jsonb,
	"crm_payload" jsonb,
	"first_event_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_event_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"synced_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "sync_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"call_sync_id" bigint NOT NULL,
	"attempt" integer NOT NULL,
	"target" text NOT NULL,
	"worker_id" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"outcome" text NOT NULL,
	"error_kind" text,
	"error" text,
	"http_status" integer,
	"crm_response" jsonb
);
--> statement-breakpoint
CREATE TABLE "webhook_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"event_type" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"call_key" text NOT NULL,
	"vendor_time" timestamp with time zone,
	"vendor_time_raw" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"raw_body" text NOT NULL,
	"payload" jsonb NOT NULL,
	"headers" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
ALTER TABLE "sync_attempts" ADD CONSTRAINT "sync_attempts_call_sync_id_call_syncs_id_fk" FOREIGN KEY ("call_sync_id") REFERENCES "public"."call_syncs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "admin_audit_at" ON "admin_audit" USING btree ("at");--> statement-breakpoint
CREATE UNIQUE INDEX "call_syncs_source_call_key" ON "call_syncs" USING btree ("source","call_key");--> statement-breakpoint
CREATE INDEX "call_syncs_due" ON "call_syncs" USING btree ("next_attempt_at","id") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "call_syncs_status_updated" ON "call_syncs" USING btree ("status","updated_at","id");--> statement-breakpoint
CREATE INDEX "sync_attempts_call" ON "sync_attempts" USING btree ("call_sync_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_events_source_dedupe_key" ON "webhook_events" USING btree ("source","dedupe_key");--> statement-breakpoint
CREATE INDEX "webhook_events_call" ON "webhook_events" USING btree ("source","call_key","id");--> statement-breakpoint
CREATE INDEX "webhook_events_status_received" ON "webhook_events" USING btree ("status","received_at");