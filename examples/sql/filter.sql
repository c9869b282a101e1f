-- Large orders, converted and labelled, row by row (no window).
-- rill query tcp://127.0.0.1:5555 --file examples/sql/filter.sql --format text
CREATE TABLE orders (id BIGINT, customer STRING, amount DOUBLE, currency STRING, ts TIMESTAMP(3))
  WITH ('topic' = 'shop/orders', 'format' = 'json');
SELECT id, UPPER(customer) AS customer, amount * 0.908 AS eur,
       CASE WHEN amount >= 1000 THEN 'big' ELSE 'large' END AS size
  FROM orders
  WHERE currency = 'USD' AND amount > 500;
