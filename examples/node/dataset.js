// Acme POS's data, already in ShopiMind's shapes: a small in-memory dataset. Each record's
// updated_at is spread over the hours before midnight (UTC) today, so a window answers the
// same pages for the whole day.
"use strict";

const STORES = { "store-paris": "Paris", "store-lyon": "Lyon" };
const CREATED_AT = "2025-01-06T09:00:00.000Z";
const FIRST_NAMES = ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Inès", "Adam"];
const LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit"];
const round2 = (x) => Math.round(x * 100) / 100;

const customer = (i) => {
  const first = FIRST_NAMES[i % FIRST_NAMES.length];
  const last = LAST_NAMES[i % LAST_NAMES.length];
  return {
    customer_id: `c-${i}`,
    email: `${first}.${last}.${i}@example.com`.toLowerCase(),
    first_name: first,
    last_name: last,
    is_opt_in: i % 3 === 0,
    is_newsletter_subscribed: i % 4 === 0,
    lang: "fr",
    is_active: true,
    created_at: CREATED_AT,
  };
};

const order = (store) => (i) => {
  const amount = round2(12.5 + ((i * 7.3) % 180));
  return {
    order_id: `${store}-o-${i}`,
    lang: "fr",
    status_id: "paid",
    customer: { customer_id: `c-${i}`, email: `customer.${i}@example.com`, created_at: CREATED_AT },
    products: [
      { product_id: i % 12, price: amount, price_without_tax: round2(amount / 1.2), quantity: 1 },
    ],
    cart_id: `${store}-cart-${i}`,
    cart_updated_at: CREATED_AT,
    amount,
    amount_without_tax: round2(amount / 1.2),
    shipping_costs: 0,
    shipping_costs_without_tax: 0,
    currency: "EUR",
    is_confirmed: true,
    created_at: CREATED_AT,
  };
};

const product = (i) => ({
  product_id: i,
  lang: "fr",
  name: `Article ${i}`,
  description: `Article ${i} of the Acme POS catalog`,
  link: `https://shop.acme-pos.example/p/${i}`,
  currency: "EUR",
  price: round2(9.9 + i),
  quantity_remaining: i % 17,
  is_active: true,
  created_at: CREATED_AT,
});

const loyaltyCard = (i) => ({
  card_number: `AC-${100000 + i}`,
  customer_id: `c-${i}`,
  program_code: "classic",
  points: (i * 37) % 1200,
  tier: ["silver", "gold", "platinum"][i % 3],
});

const ENTITIES = {
  customers: () => [24, customer],
  orders: (sourceKey) => (sourceKey in STORES ? [10, order(sourceKey)] : [0, null]),
  products: () => [12, product],
  loyalty_cards: () => [8, loyaltyCard],
};

// Every record of `entity` (for `sourceKey`), oldest first, each with its updated_at.
function records(entity, sourceKey) {
  const [count, make] = ENTITIES[entity](sourceKey);
  const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  return Array.from({ length: count }, (_, i) => ({
    ...make(i),
    updated_at: new Date(midnight - (count - i) * 3_600_000).toISOString(),
  }));
}

module.exports = { STORES, ENTITIES, records };
