-- Both budget windows (the last hour, the last day) are summed before every inference call:
-- with the cost in the index, the sums are read from the index alone, never from the rows.
DROP INDEX inference_costs_created;
CREATE INDEX inference_costs_created_cost ON inference_costs (created_at, cost_micro_usdc);
