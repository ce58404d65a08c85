-- /describe's result is text, not images: the prompts it wrote for a picture (Described.to_dict() as JSON), kept
-- with its job so that the buttons under them find them after a restart. NULL for every other kind of job.
ALTER TABLE jobs ADD COLUMN described TEXT;
