-- locale: the requester's Discord locale (bot.i18n), so what the bot says about a job after a restart (its result,
-- a failure, an expiry) is still in their language. NULL for jobs from before languages, or from the command line.
ALTER TABLE jobs ADD COLUMN locale TEXT;
