-- /settings channel safety: what a picture the safety check flags gets in this channel (spoiler or block), never
-- looser than bot.yaml's safety.action. NULL: bot.yaml decides.
ALTER TABLE channel_settings ADD COLUMN safety TEXT;
