<?php
// Acme POS's data, already in ShopiMind's shapes: a small in-memory dataset, the same
// on every request. Each record's updated_at is spread over the hours before midnight
// (UTC) today, so a window always answers the same pages for the whole day.

declare(strict_types=1);

const STORES = ['store-paris' => 'Paris', 'store-lyon' => 'Lyon'];
const CREATED_AT = '2025-01-06T09:00:00.000Z';
const FIRST_NAMES = ['Camille', 'Louis', 'Léa', 'Hugo', 'Chloé', 'Jules', 'Inès', 'Adam'];
const LAST_NAMES = ['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit'];

// When record $index of $count was last updated: hours before today's midnight, oldest first.
function updated_at(int $index, int $count): int {
    $midnight = intdiv(time(), 86400) * 86400;
    return $midnight - ($count - $index) * 3600;
}

function iso(int $seconds): string {
    return gmdate('Y-m-d\TH:i:s.000\Z', $seconds);
}

function customer(int $i): array {
    $first = FIRST_NAMES[$i % count(FIRST_NAMES)];
    $last = LAST_NAMES[$i % count(LAST_NAMES)];
    return [
        'customer_id' => "c-$i",
        'email' => strtolower("$first.$last.$i@example.com"),
        'first_name' => $first,
        'last_name' => $last,
        'is_opt_in' => $i % 3 === 0,
        'is_newsletter_subscribed' => $i % 4 === 0,
        'lang' => 'fr',
        'is_active' => true,
        'created_at' => CREATED_AT,
    ];
}

function order(string $store, int $i): array {
    $amount = round(12.5 + fmod($i * 7.3, 180), 2);
    return [
        'order_id' => "$store-o-$i",
        'lang' => 'fr',
        'status_id' => 'paid',
        'customer' => ['customer_id' => "c-$i", 'email' => "customer.$i@example.com", 'created_at' => CREATED_AT],
        'products' => [['product_id' => $i % 12, 'price' => $amount, 'price_without_tax' => round($amount / 1.2, 2), 'quantity' => 1]],
        'cart_id' => "$store-cart-$i",
        'cart_updated_at' => CREATED_AT,
        'amount' => $amount,
        'amount_without_tax' => round($amount / 1.2, 2),
        'shipping_costs' => 0,
        'shipping_costs_without_tax' => 0,
        'currency' => 'EUR',
        'is_confirmed' => true,
        'created_at' => CREATED_AT,
    ];
}

function product(int $i): array {
    return [
        'product_id' => $i,
        'lang' => 'fr',
        'name' => "Article $i",
        'description' => "Article $i of the Acme POS catalog",
        'link' => "https://shop.acme-pos.example/p/$i",
        'currency' => 'EUR',
        'price' => round(9.9 + $i, 2),
        'quantity_remaining' => $i % 17,
        'is_active' => true,
        'created_at' => CREATED_AT,
    ];
}

function loyalty_card(int $i): array {
    return [
        'card_number' => 'AC-' . (100000 + $i),
        'customer_id' => "c-$i",
        'program_code' => 'classic',
        'points' => ($i * 37) % 1200,
        'tier' => ['silver', 'gold', 'platinum'][$i % 3],
    ];
}

// Every record of $entity (for $sourceKey), oldest first, each with its updated_at.
function records(string $entity, string $sourceKey): array {
    $build = match ($entity) {
        'customers' => ['count' => 24, 'make' => fn (int $i) => customer($i)],
        'orders' => isset(STORES[$sourceKey])
            ? ['count' => 10, 'make' => fn (int $i) => order($sourceKey, $i)]
            : ['count' => 0, 'make' => null],
        'products' => ['count' => 12, 'make' => fn (int $i) => product($i)],
        'loyalty_cards' => ['count' => 8, 'make' => fn (int $i) => loyalty_card($i)],
        default => null,
    };
    if ($build === null) {
        return [];
    }
    $records = [];
    for ($i = 0; $i < $build['count']; $i++) {
        $records[] = $build['make']($i) + ['updated_at' => iso(updated_at($i, $build['count']))];
    }
    return $records;
}

function known_entity(string $entity): bool {
    return in_array($entity, ['customers', 'orders', 'products', 'loyalty_cards'], true);
}
