CREATE TABLE "catalogue_generation" (
	"id" integer PRIMARY KEY NOT NULL,
	"generation" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "catalogue_generation" ADD CONSTRAINT "catalogue_generation_single_row" CHECK ("id" = 1);
--> statement-breakpoint
INSERT INTO "catalogue_generation" ("id", "generation") VALUES (1, 0);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION catalogue_generation_bump() RETURNS trigger AS $$
BEGIN
  UPDATE catalogue_generation SET generation = generation + 1 WHERE id = 1;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER datasets_bump_catalogue_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON datasets FOR EACH STATEMENT EXECUTE FUNCTION catalogue_generation_bump();
--> statement-breakpoint
CREATE TRIGGER dataset_versions_bump_catalogue_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dataset_versions FOR EACH STATEMENT EXECUTE FUNCTION catalogue_generation_bump();
