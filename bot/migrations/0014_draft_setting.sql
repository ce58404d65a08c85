-- /settings me draft: /imagine renders at the model's draft settings unless its draft option says otherwise.
ALTER TABLE user_settings ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;
