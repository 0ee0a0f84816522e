'use client';
import { useRouter } from 'next/navigation';
import { useEffect } from 'react';

// Re-renders the page on the server every half second until the webhook has
// confirmed the order (it usually has within milliseconds of the commit).
export function RefreshWhilePending({ pending }) {
  const router = useRouter();
  useEffect(() => {
    if (!pending) return undefined;
    const timer = setInterval(() => router.refresh(), 500);
    return () => clearInterval(timer);
  }, [pending, router]);
  return null;
}
