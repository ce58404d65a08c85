-- webhook_only: the job was asked for where the bot is not a member (a user-installed command in someone else's
-- server, a group DM), so everything about it goes through the interaction's webhook and never into the channel,
-- after a restart too. Once the interaction's token expires its result can't be shown anywhere: it is undeliverable.
ALTER TABLE jobs ADD COLUMN webhook_only INTEGER NOT NULL DEFAULT 0;
