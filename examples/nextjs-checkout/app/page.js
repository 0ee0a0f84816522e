import { randomUUID } from 'node:crypto';
import { CheckoutForm } from './checkout-form.js';
import { ITEMS } from '../lib/items.js';

// Rendered per request: every visit gets a fresh idempotency key.
export const dynamic = 'force-dynamic';

export default function Checkout() {
  return (
    <>
      <h1>Checkout</h1>
      <CheckoutForm idempotencyKey={randomUUID()} items={ITEMS} />
    </>
  );
}
