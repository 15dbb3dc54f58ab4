-- Released cells keep their contributor count only in bands of 5 (src/privacy/differencing-guard.ts): the exact
-- count is inside each sealed sketch, and the band only pre-selects candidates for the differencing guard.
UPDATE "released_cells" SET "contributors" = ("contributors" / 5) * 5;
