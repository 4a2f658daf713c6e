-- Scores of an earlier run date next to the outcomes that a later run date's data reveals.
--
-- Tables: `scores` (scores/run_date=<score date>) and `outcomes` (features/train of the outcome
-- date: anchors whose 60-day window had closed by then, with their label). Only anchors that were
-- scored (status 'open': no repurchase yet on the score date) are compared. `resolved` is false
-- for those without a label on the outcome date: the window is still open, or the anchor order
-- was returned after the score date and so no longer counts as a completed order.
SELECT
    s.anchor_order_id,
    s.days_elapsed,
    s.probability,
    s.probability_at_anchor,
    s.predicted_repurchase,
    o.order_id IS NOT NULL AS resolved,
    o.label
FROM scores s
LEFT JOIN outcomes o ON o.order_id = s.anchor_order_id AND o.user_id = s.user_id
WHERE s.status = 'open'
ORDER BY s.anchor_order_id
