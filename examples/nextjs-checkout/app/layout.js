import './style.css';

export const metadata = { title: 'outbox checkout' };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <main>{children}</main>
      </body>
    </html>
  );
}
