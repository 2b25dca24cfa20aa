-- Bulk resize and upgrade (issue 11): an operation may move every store it matches to one
-- plan, or upgrade each onto a release channel. The parameter sits beside `from_step`, and
-- each belongs to its action only.
ALTER TABLE urumi.operations ADD COLUMN plan text, ADD COLUMN channel text;
ALTER TABLE urumi.operations DROP CONSTRAINT operations_action_check;
ALTER TABLE urumi.operations ADD CONSTRAINT operations_action_check
    CHECK (action IN ('retry', 'cancel', 'rerun', 'repair', 'delete', 'suspend', 'resume', 'backup',
                      'resize', 'upgrade'));
-- A resize names its plan; nothing else has one.
ALTER TABLE urumi.operations ADD CONSTRAINT operations_plan_check
    CHECK ((action = 'resize') = (plan IS NOT NULL));
-- An upgrade may name a channel (none: each store's own); nothing else has one.
ALTER TABLE urumi.operations ADD CONSTRAINT operations_channel_check
    CHECK (channel IS NULL OR action = 'upgrade');
