-- Nexmark q1, currency conversion: bid prices from dollars to euros.
CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('topic' = 'nexmark/bid', 'format' = 'json');

CREATE TABLE nexmark_q1 (auction BIGINT, bidder BIGINT, price DOUBLE, `dateTime` TIMESTAMP(3), extra STRING) WITH ('topic' = 'nexmark/q1', 'endpoint' = 'shm://nexmark-out', 'format' = 'json');

INSERT INTO nexmark_q1
SELECT
    auction,
    bidder,
    0.908 * price AS price, -- convert dollar to euro
    `dateTime`,
    extra
FROM bid;
