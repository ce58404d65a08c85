-- An instruction edit's pictures (GenerationRequest.input_images) are kept beside the job like its reference
-- pictures, so a resumed job and the buttons under its result (rerolls) use them again: a JSON list of paths relative
-- to the storage directory, in the order the prompt calls them image 1, image 2, ...; NULL: none; '' once
-- housekeeping (or forget-me) deleted them. inputs_owner is whose they are, as init_owner and references_owner
-- (0011). No job stored before kept such pictures: nothing to fill in.
ALTER TABLE jobs ADD COLUMN input_paths TEXT;
ALTER TABLE jobs ADD COLUMN inputs_owner INTEGER;
