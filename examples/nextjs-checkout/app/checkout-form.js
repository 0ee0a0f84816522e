'use client';
import { useActionState } from 'react';
import { placeOrder } from './actions.js';

export function CheckoutForm({ idempotencyKey, items }) {
  const [state, formAction] = useActionState(placeOrder, null);
  // The button is deliberately not disabled while pending: the server, not
  // the browser, is what makes a double click harmless.
  return (
    <form action={formAction}>
      <input type="hidden" name="idempotencyKey" value={idempotencyKey} readOnly />
      <label>Item
        <select name="item" defaultValue={items[0]}>
          {items.map((item) => <option key={item}>{item}</option>)}
        </select>
      </label>
      <label>Quantity <input name="quantity" type="number" min="1" max="10" defaultValue="1" /></label>
      <button type="submit">Place order</button>
      {state?.error && <p className="error" role="alert">{state.error}</p>}
    </form>
  );
}
