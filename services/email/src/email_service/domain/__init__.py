"""What the email service says to customers, and how an email is identified. No I/O."""
