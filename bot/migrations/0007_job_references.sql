-- Reference pictures (/blend, /imagine's reference) are kept beside the job like the img2img source (init_path), so
-- a resumed job and the buttons under its result (variations, rerolls) use them again: a JSON list of paths
-- relative to the storage directory; NULL: none; '' once housekeeping (or forget-me) deleted them.
ALTER TABLE jobs ADD COLUMN reference_paths TEXT;
