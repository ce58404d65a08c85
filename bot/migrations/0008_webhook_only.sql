-- webhook_only: the job was asked for where the bot is not a member (a user-installed command in someone else's
-- server, a group DM), so everything about it goes through the interaction's webhook and never into the channel,
-- after a restart too. Once the interaction's token expires its result can't be shown anywhere: it is undeliverable.
ALTER TABLE jobs ADD COLUMN webhook_only INTEGER NOT NULL DEFAULT 0;
-- notice: what the bot could not tell the person about such a job (its result lost, its failure or expiry), for the
-- next time they use /imagine or a button; cleared once told.
ALTER TABLE jobs ADD COLUMN notice TEXT;
CREATE INDEX jobs_with_notice ON jobs (user_id) WHERE notice IS NOT NULL;
