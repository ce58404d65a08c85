-- The bot's own channel posts (results it could not deliver through the interaction) are looked up by message id
-- when someone presses their delete button.
CREATE INDEX jobs_result_message ON jobs (result_message_id);
