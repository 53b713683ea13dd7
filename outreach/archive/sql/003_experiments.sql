-- Experiments (docs/JOURNEYS.md, "Experiments"): the experiment a send was part of and the
-- customer's arm in it (a variant's name, or 'holdout'); '' for a send outside any experiment.
ALTER TABLE sends ADD COLUMN experiment TEXT NOT NULL DEFAULT '';
ALTER TABLE sends ADD COLUMN variant TEXT NOT NULL DEFAULT '';
CREATE INDEX sends_experiment ON sends (experiment, finished_ms);
